// Package conformance runs the upstream Gateway API conformance suite with its own flags
// (-gateway-class, -supported-features, -conformance-profiles, -report-output, ...).
// run.sh passes the ones signalbox claims; see README.md.
package conformance

import (
	"testing"

	"sigs.k8s.io/gateway-api/conformance"
)

func TestConformance(t *testing.T) {
	conformance.RunConformance(t)
}
