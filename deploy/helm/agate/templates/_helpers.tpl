{{/* Names and labels shared by every object of the release. */}}
{{- define "agate.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}{{ .Release.Name | trunc 50 | trimSuffix "-" }}{{- else -}}{{ printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" }}{{- end -}}
{{- end -}}

{{- define "agate.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Selector labels of one component: (dict "root" $ "component" "proxy"). */}}
{{- define "agate.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "agate.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "agate.targetSecretName" -}}
{{- .Values.targetCredentials.existingSecret | default (printf "%s-targets" (include "agate.fullname" .)) -}}
{{- end -}}

{{/*
The config every process reads: the user's `config` with the keys the chart owns laid over it
(data_dir, bus, store, listeners on the pod address, ops).
*/}}
{{- define "agate.config" -}}
{{- $v := .Values -}}
{{- $_ := required "kafka.brokers: list at least one broker (HOST:PORT)" (first $v.kafka.brokers) -}}
{{- $_ := required "clickhouse.url: the ClickHouse server's HTTP URL" $v.clickhouse.url -}}
{{- $bus := dict "kind" "kafka" "brokers" $v.kafka.brokers "events_topic" $v.kafka.eventsTopic "verdicts_topic" $v.kafka.verdictsTopic "partitions" (int $v.kafka.partitions) "replication_factor" (int $v.kafka.replicationFactor) -}}
{{- if $v.kafka.schemaRegistryUrl }}{{ $_ := set $bus "schema_registry" (dict "url" $v.kafka.schemaRegistryUrl) }}{{ end -}}
{{- $store := dict "kind" "clickhouse" "url" $v.clickhouse.url "username" $v.clickhouse.username -}}
{{- if $v.clickhouse.passwordSecret }}{{ $_ := set $store "password" (dict "env" "AGATE_STORE_PASSWORD") }}{{ end -}}
{{- $postgres := dict "listen" (printf "0.0.0.0:%d" (int $v.proxy.postgres.port)) -}}
{{- $proxy := dict "postgres" $postgres -}}
{{- if $v.proxy.ssh.enabled }}{{ $_ := set $proxy "ssh" (dict "listen" (printf "0.0.0.0:%d" (int $v.proxy.ssh.port)) "host_key_file" "/var/lib/agate/ssh/host_key") }}{{ end -}}
{{- $owned := dict
    "data_dir" "/var/lib/agate"
    "bus" $bus
    "store" $store
    "proxy" $proxy
    "query" (dict "listen" (printf "0.0.0.0:%d" (int $v.query.port)))
    "ledger" (dict "signing_key" "/var/lib/agate/ledger/checkpoint.key")
    "ops" (dict "listen" (printf "0.0.0.0:%d" (int $v.ops.port)) "drain_timeout_ms" (mul (int $v.ops.drainTimeoutSeconds) 1000))
-}}
{{- toYaml (mustMergeOverwrite (deepCopy $v.config) $owned) -}}
{{- end -}}

{{/*
One Agate Deployment's pod template: (dict "root" $ "component" "ledger" "ports" (list ...) "values" $.Values.ledger).
The root filesystem is read-only; /var/lib/agate (data_dir) and /tmp are emptyDirs.
*/}}
{{- define "agate.podTemplate" -}}
{{- $root := .root -}}
{{- $v := $root.Values -}}
metadata:
  labels:
    {{- include "agate.selectorLabels" . | nindent 4 }}
  annotations:
    checksum/config: {{ include "agate.config" $root | sha256sum }}
    {{- with $v.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: {{ $v.ops.terminationGracePeriodSeconds }}
  securityContext:
    {{- toYaml $v.podSecurityContext | nindent 4 }}
  {{- with $v.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- if or (eq .component "ledger") (and (eq .component "proxy") $v.proxy.ssh.enabled) }}
  # Agate refuses key files others can read or that are symlinks (secret volumes are both), so the
  # key is copied, 0600 and owned by Agate's user, into the data directory first.
  initContainers:
    - name: keys
      image: {{ include "agate.image" $root }}
      imagePullPolicy: {{ $v.image.pullPolicy }}
      command: ["sh", "-c"]
      {{- if eq .component "ledger" }}
      args: ["mkdir -m 0700 -p /var/lib/agate/ledger && install -m 0600 /etc/agate/ledger-key/{{ $v.ledgerSigningKey.key }} /var/lib/agate/ledger/checkpoint.key"]
      {{- else }}
      args: ["mkdir -m 0700 -p /var/lib/agate/ssh && install -m 0600 /etc/agate/ssh-host-key/ssh_host_ed25519_key /var/lib/agate/ssh/host_key"]
      {{- end }}
      securityContext:
        {{- toYaml $v.securityContext | nindent 8 }}
      resources:
        requests: { cpu: 10m, memory: 16Mi }
        limits: { memory: 32Mi }
      volumeMounts:
        - { name: data, mountPath: /var/lib/agate }
        {{- if eq .component "ledger" }}
        - { name: ledger-key, mountPath: /etc/agate/ledger-key, readOnly: true }
        {{- else }}
        - { name: ssh-host-key, mountPath: /etc/agate/ssh-host-key, readOnly: true }
        {{- end }}
  {{- end }}
  containers:
    - name: {{ .component }}
      image: {{ include "agate.image" $root }}
      imagePullPolicy: {{ $v.image.pullPolicy }}
      args: [{{ .component | quote }}, "--config", "/etc/agate/agate.yaml"]
      {{- if $v.clickhouse.passwordSecret }}
      env:
        - name: AGATE_STORE_PASSWORD
          valueFrom:
            secretKeyRef: { name: {{ $v.clickhouse.passwordSecret }}, key: password }
      {{- end }}
      ports:
        - { name: ops, containerPort: {{ $v.ops.port }}, protocol: TCP }
        {{- range .ports }}
        - { name: {{ .name }}, containerPort: {{ .port }}, protocol: TCP }
        {{- end }}
      startupProbe:
        httpGet: { path: /healthz, port: ops }
        periodSeconds: 2
        failureThreshold: 60
      livenessProbe:
        httpGet: { path: /healthz, port: ops }
        periodSeconds: 10
        timeoutSeconds: 3
        failureThreshold: 3
      readinessProbe:
        httpGet: { path: /readyz, port: ops }
        periodSeconds: 5
        timeoutSeconds: 3
        failureThreshold: 2
      lifecycle:
        preStop:
          sleep: { seconds: {{ $v.ops.preStopSleepSeconds }} }
      resources:
        {{- toYaml .values.resources | nindent 8 }}
      securityContext:
        {{- toYaml $v.securityContext | nindent 8 }}
      volumeMounts:
        - { name: config, mountPath: /etc/agate/agate.yaml, subPath: agate.yaml, readOnly: true }
        - { name: data, mountPath: /var/lib/agate }
        - { name: tmp, mountPath: /tmp }
        {{- if eq .component "proxy" }}
        - { name: targets, mountPath: /etc/agate/targets, readOnly: true }
        {{- end }}
  volumes:
    - name: config
      configMap: { name: {{ include "agate.fullname" $root }}-config }
    - name: data
      emptyDir: { sizeLimit: 256Mi }
    - name: tmp
      emptyDir: { sizeLimit: 64Mi }
    {{- if eq .component "proxy" }}
    - name: targets
      secret: { secretName: {{ include "agate.targetSecretName" $root }}, defaultMode: 0440 }
    {{- end }}
    {{- if eq .component "ledger" }}
    - name: ledger-key
      secret: { secretName: {{ required "ledgerSigningKey.existingSecret: the Secret holding the checkpoint signing key" $v.ledgerSigningKey.existingSecret }}, defaultMode: 0440 }
    {{- end }}
    {{- if and (eq .component "proxy") $v.proxy.ssh.enabled }}
    - name: ssh-host-key
      secret: { secretName: {{ required "proxy.ssh.hostKeySecret: the Secret holding the SSH proxy's host key" $v.proxy.ssh.hostKeySecret }}, defaultMode: 0440 }
    {{- end }}
  {{- with $v.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}
