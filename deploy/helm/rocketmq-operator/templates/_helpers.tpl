{{/* Names are cut at 63 characters: Kubernetes label values and many names allow no more. */}}
{{- define "rocketmq-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "rocketmq-operator.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "rocketmq-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "rocketmq-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "rocketmq-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "rocketmq-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "rocketmq-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "rocketmq-operator.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "rocketmq-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The Secret the credentials come from: the user's, the chart's, or none. */}}
{{- define "rocketmq-operator.credentialsSecret" -}}
{{- if .Values.credentials.existingSecret -}}
{{- .Values.credentials.existingSecret -}}
{{- else if .Values.credentials.create -}}
{{- printf "%s-credentials" (include "rocketmq-operator.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* "true" when Kopf peering is on: asked for, or implied by more than one replica. */}}
{{- define "rocketmq-operator.peering" -}}
{{- if or .Values.peering.enabled (gt (int .Values.replicaCount) 1) -}}true{{- end -}}
{{- end -}}

{{- define "rocketmq-operator.peeringName" -}}
{{- default (include "rocketmq-operator.fullname" .) .Values.peering.name -}}
{{- end -}}

{{/*
The operator's arguments. The Deployment runs them, and the uninstall guard and the tests read them
from the rendered manifest, so there is one place that says how the operator is started.
*/}}
{{- define "rocketmq-operator.args" -}}
- run
- --liveness=http://0.0.0.0:{{ .Values.probes.port }}/healthz
- --metrics-port={{ .Values.metrics.port }}
- --metrics-host=0.0.0.0
- --log-format={{ .Values.logFormat }}
{{- if .Values.verbose }}
- --verbose
{{- end }}
{{- range .Values.watchNamespaces }}
- --namespace={{ . }}
{{- end }}
{{- if include "rocketmq-operator.peering" . }}
- --peering={{ include "rocketmq-operator.peeringName" . }}
{{- /* Equal priorities make every Kopf peer pause; a random one per start elects one. */}}
- --priority=random
{{- /* How long a killed replica still counts as alive: the standby's wait before it takes over. */}}
- --peering-lifetime={{ .Values.peering.lifetimeSeconds }}
{{- end }}
{{- end -}}

{{/* DMS_* variables from `settings`: camelCase key -> DMS_UPPER_SNAKE; empty strings are left out. */}}
{{- define "rocketmq-operator.settingsEnv" -}}
{{- range $key, $value := .Values.settings }}
{{- $text := toString $value }}
{{- if ne $text "" }}
- name: {{ printf "DMS_%s" ($key | snakecase | upper) }}
  value: {{ $text | quote }}
{{- end }}
{{- end }}
{{- end -}}

{{- define "rocketmq-operator.credentialsEnv" -}}
{{- $secret := include "rocketmq-operator.credentialsSecret" . }}
{{- if $secret }}
{{- $keys := .Values.credentials.keys }}
{{- range $env, $field := dict "DMS_ACCESS_KEY" "accessKey" "DMS_SECRET_KEY" "secretKey" "DMS_SECURITY_TOKEN" "securityToken" "DMS_AUTH_TOKEN" "authToken" }}
- name: {{ $env }}
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ get $keys $field }}
      optional: true
{{- end }}
{{- end }}
{{- end -}}

{{/* RBAC rules for the namespaced objects the operator works on (a Role per namespace, or the ClusterRole). */}}
{{- define "rocketmq-operator.namespacedRules" -}}
# Kopf watches the CRs (instances, their topics, consumer groups and users, and the namespace's
# accounts), adds and removes the finalizer (on an account: while instances use it, so it is not
# deleted under them), and keeps handler progress in annotations.
- apiGroups: ["dms.rocketmq-operator.io"]
  resources: ["rocketmqinstances", "rocketmqtopics", "rocketmqconsumergroups", "rocketmqusers", "rocketmqaccounts"]
  verbs: ["list", "watch", "patch"]
# Conditions, endpoints and per-object deletion results; an account's: do its credentials work, who uses it.
- apiGroups: ["dms.rocketmq-operator.io"]
  resources:
    - "rocketmqinstances/status"
    - "rocketmqtopics/status"
    - "rocketmqconsumergroups/status"
    - "rocketmqusers/status"
    - "rocketmqaccounts/status"
  verbs: ["patch"]
# An Event on the CR for every cloud-side transition.
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
{{- if .Values.accounts.namespaced }}
# Credentials of RocketMQAccounts (accounts.namespaced): get, by the name spec.credentials.secretName
# gives, in the account's own namespace. Without it the account says Stalled (403 on its Secret), and so
# do the instances using it. patch: the operator's finalizer on that Secret while the account exists (a
# namespace teardown deletes the Secret first; the account's instances still need it). Apart from the
# connection Secrets rule: either may be off alone.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "patch"]
{{- end }}
{{- if .Values.settings.connectionSecrets }}
# Connection Secrets (spec.connectionSecret): get (metadata only: is it ours, is it current), create,
# update (only one it owns), delete (the old one after a rename). No list or watch: it never looks at
# Secrets it was not asked to write. RBAC cannot narrow this to the names CRs choose.
# RocketMQUser rides on the same switch: get reads the one key spec.secretKeyRef names (the only
# Secret value the operator ever reads), create writes the Secret of spec.generateSecretKey; a
# user's spec.connectionSecret is written like an instance's.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "create", "update", "delete"]
{{- end }}
{{- end }}
{{- define "rocketmq-operator.peeringRules" -}}
# Kopf peering: every replica lists/watches the peering objects and writes its keep-alive into ours.
- apiGroups: ["kopf.dev"]
  resources: [{{ .resource | quote }}]
  verbs: ["list", "watch"]
- apiGroups: ["kopf.dev"]
  resources: [{{ .resource | quote }}]
  resourceNames: [{{ .name | quote }}]
  verbs: ["patch"]
{{- end }}

{{- define "rocketmq-operator.defaultAccountName" -}}
{{- default (include "rocketmq-operator.fullname" .) .Values.accounts.defaultClusterAccount.name -}}
{{- end -}}

{{/* Secrets ClusterRocketMQAccounts may name; empty: any in the release namespace. */}}
{{- define "rocketmq-operator.clusterSecretNames" -}}
{{- $names := .Values.accounts.clusterSecretNames }}
{{- $account := .Values.accounts.defaultClusterAccount }}
{{- if and $names $account.create }}
{{- $names = append $names $account.secretName | uniq }}
{{- end }}
{{- with $names }}{{ toJson . }}{{ end }}
{{- end -}}

{{/* Rules between values that a JSON schema cannot state; the operator would refuse them at start-up. */}}
{{- define "rocketmq-operator.validate" -}}
{{- $s := .Values.settings }}
{{- if lt (float64 $s.batchMaxWaitSeconds) (float64 $s.batchWindowSeconds) }}
{{- fail (printf "settings.batchMaxWaitSeconds (%v) must not be below settings.batchWindowSeconds (%v)" $s.batchMaxWaitSeconds $s.batchWindowSeconds) }}
{{- end }}
{{- if and $s.caFile $s.insecureSkipTlsVerify }}
{{- fail "settings.caFile and settings.insecureSkipTlsVerify contradict each other: set one" }}
{{- end }}
{{- $a := .Values.accounts.defaultClusterAccount }}
{{- if and $a.create (eq (empty $a.endpoint) (empty $a.region)) }}
{{- fail "accounts.defaultClusterAccount: set exactly one of endpoint and region (the API server refuses the account otherwise)" }}
{{- end }}
{{- end -}}
