{{/* Base name of every object of the release. */}}
{{- define "berth.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 54 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 54 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "berth.operatorName" -}}
{{- printf "%s-operator" (include "berth.fullname" .) -}}
{{- end -}}

{{- define "berth.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "berth.operatorName" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
An image reference from {repository, tag}: `include "berth.image" (list .Values.images.runtime $)`.
global.imageRegistry replaces the registry part of the repository (its first path component
when that has a dot or a port, or is localhost) and prefixes names without one (Docker
Hub's). An empty tag is the chart's appVersion; a sha256: tag is a digest.
*/}}
{{- define "berth.image" -}}
{{- $image := index . 0 -}}
{{- $root := index . 1 -}}
{{- $repository := $image.repository -}}
{{- $registry := trimSuffix "/" (($root.Values.global | default dict).imageRegistry | default "") -}}
{{- if $registry -}}
{{- $parts := splitList "/" $repository -}}
{{- $first := first $parts -}}
{{- if and (gt (len $parts) 1) (or (contains "." $first) (contains ":" $first) (eq $first "localhost")) -}}
{{- $repository = join "/" (rest $parts) -}}
{{- end -}}
{{- $repository = printf "%s/%s" $registry $repository -}}
{{- end -}}
{{- $tag := toString (default $root.Chart.AppVersion $image.tag) -}}
{{- if hasPrefix "sha256:" $tag -}}
{{- printf "%s@%s" $repository $tag -}}
{{- else -}}
{{- printf "%s:%s" $repository $tag -}}
{{- end -}}
{{- end -}}

{{/* Non-empty when the operator serves metrics (metrics.operator or a ServiceMonitor). */}}
{{- define "berth.operatorMetrics" -}}
{{- $m := .Values.metrics | default dict -}}
{{- if or ($m.operator | default dict).enabled ($m.serviceMonitor | default dict).enabled -}}
true
{{- end -}}
{{- end -}}

{{- define "berth.selectorLabels" -}}
app.kubernetes.io/name: berth-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "berth.labels" -}}
{{ include "berth.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: berth
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/*
The operator's permissions, shared by the ClusterRole (all namespaces) and the
per-namespace Roles. Reads of children it does not watch are get-only.
*/}}
{{- define "berth.rules" -}}
- apiGroups: [berth.dev]
  resources: [agentdeployments]
  verbs: [get, list, watch, patch]
- apiGroups: [berth.dev]
  resources: [agentdeployments/status]
  verbs: [get, patch]
- apiGroups: [berth.dev]
  resources: [agentdeployments/finalizers]
  verbs: [update]
- apiGroups: [""]
  resources: [configmaps, services]
  verbs: [get, list, watch, create, patch, update, delete]
- apiGroups: [""]
  resources: [secrets, serviceaccounts, persistentvolumeclaims]
  verbs: [get, create, patch, update, delete]
- apiGroups: [apps]
  resources: [deployments, statefulsets]
  verbs: [get, list, watch, create, patch, update, delete]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [get, create, patch, update, delete]
- apiGroups: [autoscaling]
  resources: [horizontalpodautoscalers]
  verbs: [get, create, patch, update, delete]
# AgentCron: the operator checks deploymentRef; it also renders each runtime's Role for
# AgentCrons, and may only grant what it holds itself (RBAC escalation prevention).
- apiGroups: [berth.dev]
  resources: [agentcrons]
  verbs: [get, list, watch]
- apiGroups: [berth.dev]
  resources: [agentcrons/status]
  verbs: [get, patch]
- apiGroups: [rbac.authorization.k8s.io]
  resources: [roles, rolebindings]
  verbs: [get, create, patch, update, delete]
# SandboxPool and SandboxClaim: the operator makes and adopts sandbox Pods, the pool's CA
# Secret, proxy ConfigMaps and NetworkPolicy, and the claims' token Secrets (never lists
# Secrets). `/finalizers` update: Pods it creates carry blockOwnerDeletion owner references
# to pools and claims. Claims: create too, so it can grant runtimes their claim Role.
- apiGroups: [berth.dev]
  resources: [sandboxpools]
  verbs: [get, list, watch, patch]
- apiGroups: [berth.dev]
  resources: [sandboxclaims]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [berth.dev]
  resources: [sandboxpools/status, sandboxclaims/status]
  verbs: [get, patch]
- apiGroups: [berth.dev]
  resources: [sandboxpools/finalizers, sandboxclaims/finalizers]
  verbs: [update]
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [get, create, patch, update, delete]
- apiGroups: ["", events.k8s.io]
  resources: [events]
  verbs: [create, patch]
{{- end -}}
