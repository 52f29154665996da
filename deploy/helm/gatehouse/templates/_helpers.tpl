{{/* Chart name, release-qualified name and labels (Helm's usual helpers). */}}
{{- define "gatehouse.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "gatehouse.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "gatehouse.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "gatehouse.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gatehouse.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "gatehouse.labels" -}}
helm.sh/chart: {{ include "gatehouse.chart" . }}
{{ include "gatehouse.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "gatehouse.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "gatehouse.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "gatehouse.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/* The Secret holding the credentials passed as environment variables. */}}
{{- define "gatehouse.secretName" -}}
{{- default (include "gatehouse.fullname" .) .Values.secrets.existingSecret }}
{{- end }}

{{/* Whether a metrics token is available to the ServiceMonitor. */}}
{{- define "gatehouse.hasMetricsToken" -}}
{{- if or .Values.secrets.existingSecret .Values.secrets.metricsToken }}true{{ end }}
{{- end }}

{{/* The port of a HOST:PORT listen address ("0.0.0.0:7070", "[::]:7070"). */}}
{{- define "gatehouse.port" -}}
{{- last (splitList ":" (toString .)) }}
{{- end }}

{{- define "gatehouse.kvEnabled" -}}
{{- $kv := default (dict) .Values.config.kv }}
{{- if or (not (hasKey $kv "enabled")) $kv.enabled }}true{{ end }}
{{- end }}

{{- define "gatehouse.edgeEnabled" -}}
{{- $edge := default (dict) .Values.config.edge }}
{{- if $edge.enabled }}true{{ end }}
{{- end }}

{{/*
Fills the configuration dict given as .config with what the chart decides: the TLS, key and
signing file paths of the mounted Secrets. Called for its effect on .config (include's text is
discarded), so the ConfigMap and the checksum see the same document.
*/}}
{{- define "gatehouse.completeConfig" -}}
{{- $root := .root }}
{{- $config := .config }}
{{- $v := $root.Values }}
{{- $tls := $v.tls }}
{{- if $tls.server.existingSecret }}
{{- $server := dict "certFile" "/etc/gatehouse-tls/server/tls.crt" "keyFile" "/etc/gatehouse-tls/server/tls.key" }}
{{- if $tls.server.clientCaKey }}
{{- $_ := set $server "clientCa" (printf "/etc/gatehouse-tls/server/%s" $tls.server.clientCaKey) }}
{{- end }}
{{- $_ := mergeOverwrite $config (dict "server" (dict "tls" $server)) }}
{{- end }}
{{- if $tls.kv.existingSecret }}
{{- $kvTls := dict "certFile" "/etc/gatehouse-tls/kv/tls.crt" "keyFile" "/etc/gatehouse-tls/kv/tls.key" }}
{{- if $tls.kv.clientCaKey }}
{{- $_ := set $kvTls "clientCaFile" (printf "/etc/gatehouse-tls/kv/%s" $tls.kv.clientCaKey) }}
{{- end }}
{{- $_ := mergeOverwrite $config (dict "kv" (dict "tls" $kvTls)) }}
{{- else if include "gatehouse.kvEnabled" $root }}
{{- /* The development certificate then also covers the Service's names (kv.tls.hosts). */}}
{{- $kvTlsConfig := default (dict) (default (dict) $config.kv).tls }}
{{- if not (hasKey $kvTlsConfig "hosts") }}
{{- $name := include "gatehouse.fullname" $root }}
{{- $ns := $root.Release.Namespace }}
{{- $hosts := list $name (printf "%s.%s" $name $ns) (printf "%s.%s.svc" $name $ns) (printf "%s.%s.svc.%s" $name $ns $v.clusterDomain) }}
{{- $_ := mergeOverwrite $config (dict "kv" (dict "tls" (dict "hosts" $hosts))) }}
{{- end }}
{{- end }}
{{- if $v.encryption.existingSecret }}
{{- $keys := list }}
{{- range $id := required "encryption.keyIds must list the key ids of encryption.existingSecret" $v.encryption.keyIds }}
{{- $keys = append $keys (dict "id" $id "file" (printf "/etc/gatehouse-keys/encryption/%s" $id)) }}
{{- end }}
{{- $_ := mergeOverwrite $config (dict "artifacts" (dict "encryption" (dict "keys" $keys))) }}
{{- end }}
{{- if $v.signing.existingSecret }}
{{- $_ := mergeOverwrite $config (dict "artifacts" (dict "signing" (dict "keyFile" (printf "/etc/gatehouse-keys/signing/%s" $v.signing.key)))) }}
{{- end }}
{{- end }}

{{/* The effective gatehouse.yaml as YAML text. */}}
{{- define "gatehouse.configYaml" -}}
{{- $config := deepCopy (default (dict) .Values.config) }}
{{- $_ := include "gatehouse.completeConfig" (dict "root" . "config" $config) }}
{{- toYaml $config }}
{{- end }}

{{/*
The top-most dynamic keys of docs/config.md (reload column "dynamic" under a "restart" parent):
the gateway applies them from the mounted file without a restart. test/deploy/helm.test.ts
keeps this list equal to the documentation.
*/}}
{{- define "gatehouse.dynamicKeys" -}}
server.roleAllowedCidrs server.metrics server.rateLimit server.authFailureAudit rbac.bindings registry.policy artifacts.quotas artifacts.defaultQuota artifacts.policy artifacts.trust kv.limits kv.audit edge.routes edge.policies
{{- end }}

{{/* The checksum that rolls the pods on a configuration change (rollOnConfigChange). */}}
{{- define "gatehouse.configChecksum" -}}
{{- $config := deepCopy (default (dict) .Values.config) }}
{{- $_ := include "gatehouse.completeConfig" (dict "root" . "config" $config) }}
{{- if eq .Values.rollOnConfigChange "static" }}
{{- range $path := splitList " " (include "gatehouse.dynamicKeys" .) }}
{{- $parts := splitList "." $path }}
{{- $node := $config }}
{{- range $key := initial $parts }}
{{- if kindIs "map" $node }}
{{- /* Parents are created, so that a document with and one without the key hash alike. */}}
{{- if not (hasKey $node $key) }}
{{- $_ := set $node $key (dict) }}
{{- end }}
{{- $node = get $node $key }}
{{- end }}
{{- end }}
{{- if kindIs "map" $node }}
{{- $_ := unset $node (last $parts) }}
{{- end }}
{{- end }}
{{- end }}
{{- toJson $config | sha256sum }}
{{- end }}

{{/* Refuses value combinations that cannot work, naming the value to change. */}}
{{- define "gatehouse.validate" -}}
{{- $v := .Values }}
{{- if not (has $v.rollOnConfigChange (list "static" "always" "never")) }}
{{- fail (printf "rollOnConfigChange must be \"static\", \"always\" or \"never\", not %q" (toString $v.rollOnConfigChange)) }}
{{- end }}
{{- $storage := default (dict) $v.config.storage }}
{{- $external := or (hasPrefix "postgres" (toString $storage.url)) $v.secrets.storageUrl $v.secrets.existingSecret }}
{{- if and (or (gt (int $v.replicaCount) 1) $v.autoscaling.enabled) (not $external) }}
{{- fail "replicaCount > 1 and autoscaling need PostgreSQL (secrets.storageUrl, secrets.existingSecret with storage-url, or config.storage.url): the embedded SQLite database belongs to one process" }}
{{- end }}
{{- if and $v.persistence.enabled $v.persistence.existingClaim (or (gt (int $v.replicaCount) 1) $v.autoscaling.enabled) }}
{{- fail "persistence.existingClaim serves one replica: leave it empty so that each replica gets its own claim" }}
{{- end }}
{{- $server := required "config.server.listen is required (e.g. \"0.0.0.0:7070\"): the gateway's default listens on loopback only" (default (dict) $v.config.server).listen }}
{{- if lt (int (include "gatehouse.port" $server)) 1024 }}
{{- fail (printf "config.server.listen %q: the container runs without privileges and cannot bind ports below 1024; map them with service.httpPort" $server) }}
{{- end }}
{{- if include "gatehouse.kvEnabled" . }}
{{- $kvListen := required "config.kv.listen is required while the kv door is enabled (e.g. \"0.0.0.0:7443\")" $v.config.kv.listen }}
{{- if lt (int (include "gatehouse.port" $kvListen)) 1024 }}
{{- fail (printf "config.kv.listen %q: the container cannot bind ports below 1024; map them with service.kvPort" $kvListen) }}
{{- end }}
{{- end }}
{{- if include "gatehouse.edgeEnabled" . }}
{{- range $listener := $v.config.edge.listeners }}
{{- if lt (int $listener.port) 1024 }}
{{- fail (printf "config.edge.listeners %q: port %v is below 1024, which the container cannot bind; use a higher port and set service.edge.ports" (toString $listener.id) $listener.port) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
