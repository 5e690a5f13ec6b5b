// Command kstatus prints the kstatus of Kubernetes objects, computed by sigs.k8s.io/cli-utils'
// pkg/kstatus/status: the same library Flux, kpt and `kubectl`-style waiters use to decide whether an
// object is Current, InProgress, Failed or Terminating.
//
// It reads JSON from stdin: one object, a List (`kubectl get rmqi -A -o json`), or several objects in a
// row. For each object it prints one line; with -o json a JSON object per line.
//
//	kubectl get rocketmqinstances -A -o json | kstatus
//	kubectl get rocketmqinstance orders -n payments -o json | kstatus -o json
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type result struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	Status    string `json:"status"`
	Message   string `json:"message"`
}

func main() {
	output := flag.String("o", "text", "output format: text or json")
	flag.Parse()
	if *output != "text" && *output != "json" {
		fmt.Fprintf(os.Stderr, "kstatus: -o must be text or json, got %q\n", *output)
		os.Exit(2)
	}
	results, err := compute(bufio.NewReader(os.Stdin))
	if err != nil {
		fmt.Fprintf(os.Stderr, "kstatus: %v\n", err)
		os.Exit(1)
	}
	out := json.NewEncoder(os.Stdout)
	for _, r := range results {
		if *output == "json" {
			if err := out.Encode(r); err != nil {
				fmt.Fprintf(os.Stderr, "kstatus: %v\n", err)
				os.Exit(1)
			}
			continue
		}
		name := r.Name
		if r.Namespace != "" {
			name = r.Namespace + "/" + r.Name
		}
		fmt.Printf("%s\t%s/%s\t%s\n", r.Status, r.Kind, name, r.Message)
	}
}

func compute(in io.Reader) ([]result, error) {
	decoder := json.NewDecoder(in)
	var results []result
	for {
		var raw json.RawMessage
		if err := decoder.Decode(&raw); errors.Is(err, io.EOF) {
			return results, nil
		} else if err != nil {
			return nil, fmt.Errorf("reading JSON: %w", err)
		}
		// The unstructured scheme keeps integers as int64, which kstatus' generation checks require
		// (plain encoding/json would turn them into float64).
		decoded, _, err := unstructured.UnstructuredJSONScheme.Decode(raw, nil, nil)
		if err != nil {
			return nil, fmt.Errorf("decoding an object: %w", err)
		}
		var objects []*unstructured.Unstructured
		switch o := decoded.(type) {
		case *unstructured.UnstructuredList:
			for i := range o.Items {
				objects = append(objects, &o.Items[i])
			}
		case *unstructured.Unstructured:
			objects = append(objects, o)
		default:
			return nil, fmt.Errorf("unexpected %T", runtime.Object(decoded))
		}
		for _, u := range objects {
			res, err := status.Compute(u)
			if err != nil {
				return nil, fmt.Errorf("%s %s/%s: %w", u.GetKind(), u.GetNamespace(), u.GetName(), err)
			}
			results = append(results, result{
				Kind:      u.GetKind(),
				Namespace: u.GetNamespace(),
				Name:      u.GetName(),
				Status:    res.Status.String(),
				Message:   res.Message,
			})
		}
	}
}
