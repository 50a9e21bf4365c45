package controllers

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
)

func TestFailedDrift(t *testing.T) {
	rec := func(id string, a v1.DriftAction) v1.DriftRecord { return v1.DriftRecord{ProductID: id, Action: a} }
	cases := map[string]struct {
		reason  string
		history []v1.DriftRecord
		want    *v1.DriftRecord
	}{
		"newest record failed": {
			reason:  "a throttled correction is finished by the next write, which must count as correcting it",
			history: []v1.DriftRecord{rec("A", v1.DriftCorrectionFailed), rec("A", v1.DriftCorrected)},
			want:    &v1.DriftRecord{ProductID: "A", Action: v1.DriftCorrectionFailed},
		},
		"an older failure was already followed by a newer drift": {
			reason:  "only the newest record of the product speaks for it",
			history: []v1.DriftRecord{rec("A", v1.DriftCorrected), rec("A", v1.DriftCorrectionFailed)},
		},
		"another product failed": {
			reason:  "records of other products do not count",
			history: []v1.DriftRecord{rec("B", v1.DriftCorrectionFailed)},
		},
		"reported in Observe mode": {
			reason:  "a reported drift was never attempted",
			history: []v1.DriftRecord{rec("A", v1.DriftReported)},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, failedDrift(tc.history, "A")); diff != "" {
				t.Errorf("%s\n(-want +got):\n%s", tc.reason, diff)
			}
		})
	}
}
