{{/* The name of the adapter's objects. */}}
{{- define "kma.name" -}}
{{- default "kube-metrics-adapter" .Values.nameOverride | trunc 53 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels every object carries. */}}
{{- define "kma.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "kma.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: metrics-adapter
app.kubernetes.io/part-of: kube-metrics-adapter
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* The labels that select the adapter's pods. */}}
{{- define "kma.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kma.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The Secret that holds the serving certificate (tls.crt, tls.key). */}}
{{- define "kma.tlsSecret" -}}
{{- if .Values.tls.existingSecret -}}
{{- .Values.tls.existingSecret -}}
{{- else -}}
{{- include "kma.name" . }}-tls
{{- end -}}
{{- end -}}

{{/* Settings that cannot work together fail the install with a message. */}}
{{- define "kma.validate" -}}
{{- if not (or .Values.customMetricsAPI.enabled .Values.externalMetricsAPI.enabled) -}}
{{- fail "customMetricsAPI.enabled and externalMetricsAPI.enabled are both false: the adapter would serve nothing" -}}
{{- end -}}
{{- if and .Values.certManager.enabled .Values.tls.existingSecret -}}
{{- fail "choose one TLS mode: certManager.enabled or tls.existingSecret, not both" -}}
{{- end -}}
{{- if and .Values.tls.existingSecret (not .Values.tls.caBundle) -}}
{{- fail "tls.existingSecret needs tls.caBundle: the base64 PEM CA certificate the APIServices trust (insecureSkipTLSVerify is never used)" -}}
{{- end -}}
{{- if and .Values.tls.caBundle (not .Values.tls.existingSecret) -}}
{{- fail "tls.caBundle is only used with tls.existingSecret" -}}
{{- end -}}
{{- if or (lt (int .Values.securePort) 1) (gt (int .Values.securePort) 65535) -}}
{{- fail (printf "securePort must be a port number, got %v" .Values.securePort) -}}
{{- end -}}
{{- if eq (int .Values.securePort) (int .Values.metricsPort) -}}
{{- fail "securePort and metricsPort must differ" -}}
{{- end -}}
{{- end -}}

{{/*
The APIServices of the enabled APIs; the context is a dict with root (the chart's context),
caBundle (base64 PEM, or "" when cert-manager injects it) and annotations (a map).
*/}}
{{- define "kma.apiservices" -}}
{{- $root := .root -}}
{{- $versions := list -}}
{{- if $root.Values.customMetricsAPI.enabled -}}
{{- $versions = append $versions (dict "group" "custom.metrics.k8s.io" "version" "v1beta1" "priority" (int $root.Values.apiService.versionPriority)) -}}
{{- $versions = append $versions (dict "group" "custom.metrics.k8s.io" "version" "v1beta2" "priority" (mul 2 (int $root.Values.apiService.versionPriority))) -}}
{{- end -}}
{{- if $root.Values.externalMetricsAPI.enabled -}}
{{- $versions = append $versions (dict "group" "external.metrics.k8s.io" "version" "v1beta1" "priority" (int $root.Values.apiService.versionPriority)) -}}
{{- end -}}
{{- range $versions }}
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata:
  name: {{ .version }}.{{ .group }}
  labels:
    {{- include "kma.labels" $root | nindent 4 }}
  {{- with $.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  group: {{ .group }}
  version: {{ .version }}
  service:
    name: {{ include "kma.name" $root }}
    namespace: {{ $root.Release.Namespace }}
    port: {{ $root.Values.service.port }}
  {{- if $.caBundle }}
  caBundle: {{ $.caBundle }}
  {{- end }}
  groupPriorityMinimum: {{ $root.Values.apiService.groupPriorityMinimum }}
  versionPriority: {{ .priority }}
{{- end }}
{{- end -}}
