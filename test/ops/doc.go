// Package ops tests what a platform team installs next to the controller:
// the PrometheusRule (promtool check and unit tests), the Grafana dashboard
// and the alert expressions (PromQL that names only exported metrics), the
// README's metrics and alerts tables, and the Argo CD health check (Lua) with
// the kstatus reading Flux uses. It is a Go module of its own so the
// Prometheus libraries never enter the controller's go.mod; it must not be
// imported by the controller.
package ops
