// Command kstatus prints the kstatus of Kubernetes objects, computed by sigs.k8s.io/cli-utils'
// pkg/kstatus/status: the same library Flux, kpt and `kubectl`-style waiters use to decide whether an
// object is Current, InProgress, Failed or Terminating.
//
// It reads JSON from stdin: one object, a List (`kubectl get rmqi -A -o json`), or several objects in a
// row. For each object it prints one line; with -o json a JSON object per line.
//
// With -flux-exprs FILE (a JSON list of Flux Kustomization healthCheckExprs entries: apiVersion, kind,
// inProgress, failed, current) it also prints what Flux would conclude from those CEL expressions,
// evaluated as fluxcd/pkg/runtime/cel does (RFC 0009): an unobserved generation is InProgress; then
// inProgress, failed and current in that order, the first true one wins; none true is InProgress.
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

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/ext"
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
	Flux      string `json:"flux,omitempty"`
	FluxError string `json:"fluxError,omitempty"`
}

// fluxCheck is one entry of a Flux Kustomization's spec.healthCheckExprs.
type fluxCheck struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	InProgress string `json:"inProgress"`
	Failed     string `json:"failed"`
	Current    string `json:"current"`
}

// The environment fluxcd/pkg/runtime/cel builds: parse-only (no declared variables: every top-level
// field of the object is one), optional types and the strings, sets and encoders extensions.
func fluxEnv() (*cel.Env, error) {
	return cel.NewEnv(
		cel.HomogeneousAggregateLiterals(),
		cel.EagerlyValidateDeclarations(true),
		cel.DefaultUTCTimeZone(true),
		cel.CrossTypeNumericComparisons(true),
		cel.OptionalTypes(),
		ext.Strings(),
		ext.Sets(),
		ext.Encoders(),
	)
}

func fluxEvaluate(env *cel.Env, check fluxCheck, u *unstructured.Unstructured) (string, error) {
	obj := u.UnstructuredContent()
	observed, found, err := unstructured.NestedInt64(obj, "status", "observedGeneration")
	if err == nil && found && observed != u.GetGeneration() {
		return "InProgress", nil
	}
	for _, step := range []struct{ expr, status string }{
		{check.InProgress, "InProgress"},
		{check.Failed, "Failed"},
		{check.Current, "Current"},
	} {
		if step.expr == "" {
			continue
		}
		parsed, issues := env.Parse(step.expr)
		if issues != nil && issues.Err() != nil {
			return "", fmt.Errorf("parsing %q: %w", step.expr, issues.Err())
		}
		program, err := env.Program(parsed)
		if err != nil {
			return "", fmt.Errorf("planning %q: %w", step.expr, err)
		}
		value, _, err := program.Eval(obj)
		if err != nil {
			return "", fmt.Errorf("evaluating %q: %w", step.expr, err)
		}
		truth, ok := value.(types.Bool)
		if !ok {
			return "", fmt.Errorf("%q is not a boolean", step.expr)
		}
		if truth {
			return step.status, nil
		}
	}
	return "InProgress", nil
}

func main() {
	output := flag.String("o", "text", "output format: text or json")
	fluxExprs := flag.String("flux-exprs", "", "JSON file with Flux healthCheckExprs entries to evaluate too")
	flag.Parse()
	if *output != "text" && *output != "json" {
		fmt.Fprintf(os.Stderr, "kstatus: -o must be text or json, got %q\n", *output)
		os.Exit(2)
	}
	var checks []fluxCheck
	if *fluxExprs != "" {
		data, err := os.ReadFile(*fluxExprs)
		if err == nil {
			err = json.Unmarshal(data, &checks)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "kstatus: -flux-exprs: %v\n", err)
			os.Exit(2)
		}
	}
	results, err := compute(bufio.NewReader(os.Stdin), checks)
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
		if r.Flux != "" || r.FluxError != "" {
			fmt.Printf("%s\t%s/%s\t%s\t(flux: %s%s)\n", r.Status, r.Kind, name, r.Message, r.Flux, r.FluxError)
			continue
		}
		fmt.Printf("%s\t%s/%s\t%s\n", r.Status, r.Kind, name, r.Message)
	}
}

func compute(in io.Reader, checks []fluxCheck) ([]result, error) {
	env, err := fluxEnv()
	if err != nil {
		return nil, err
	}
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
			r := result{
				Kind:      u.GetKind(),
				Namespace: u.GetNamespace(),
				Name:      u.GetName(),
				Status:    res.Status.String(),
				Message:   res.Message,
			}
			for _, check := range checks {
				if check.APIVersion == u.GetAPIVersion() && check.Kind == u.GetKind() {
					r.Flux, err = fluxEvaluate(env, check, u)
					if err != nil {
						r.Flux, r.FluxError = "", err.Error()
					}
				}
			}
			results = append(results, r)
		}
	}
}
