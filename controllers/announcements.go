package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
)

// An announcement is the Event of a fact that happens once and that status
// records, so no later run tells it again: a user's own purchase, its
// handover verdict, its refund window closing, the adoption. The recorder
// posts Events asynchronously, after the status write; a controller killed
// in between (SIGKILL, OOM, a lost node) would lose the only telling.
// So an announcement is created synchronously, before the status write that
// records the fact, under a name derived from the policy's UID and the
// fact: a run repeated after a lost status write (conflict, crash) finds it
// already there and tells nothing twice.
type announcement struct {
	eventNote
	// fact names what happened, unique among the policy's facts of the
	// reason, e.g. a subscription ID.
	fact string
}

// announce queues an announcement; announceAll creates the queue.
func (s *syncState) announce(eventType, reason, fact, format string, args ...any) {
	s.announcements = append(s.announcements, announcement{eventNote{eventType, reason, fmt.Sprintf(format, args...)}, fact})
}

// announceAll creates the queued announcements, each once. A failure is
// logged and does not stop the run: the fact is still recorded in status.
func (r *TenantPurchasePolicyReconciler) announceAll(ctx context.Context, s *syncState) {
	for _, a := range s.announcements {
		err := r.Client.Create(ctx, announcementEvent(s, a))
		if err != nil && !apierrors.IsAlreadyExists(err) {
			logf.FromContext(ctx).Info("Event not created", "reason", a.reason, "error", err.Error())
		}
	}
	s.announcements = nil
}

// announcementEvent is the Event of one announcement, named after the
// policy's UID, the reason and the fact.
func announcementEvent(s *syncState, a announcement) *eventsv1.Event {
	p := s.policy
	sum := sha256.Sum256([]byte(string(p.UID) + "/" + a.reason + "/" + a.fact))
	return &eventsv1.Event{
		ObjectMeta: metav1.ObjectMeta{
			// A policy's name is at most 253 characters, as is an Event's; a
			// cut name must not end a label with '-' or '.'.
			Name:      strings.TrimRight(truncate(p.Name, 253-1-16), "-.") + "." + hex.EncodeToString(sum[:8]),
			Namespace: p.Namespace,
		},
		EventTime:           metav1.NewMicroTime(s.now),
		ReportingController: reportingController,
		ReportingInstance:   reportingInstance(),
		Action:              eventAction,
		Reason:              a.reason,
		Type:                a.eventType,
		Note:                truncate(a.note, maxEventNote),
		Regarding: corev1.ObjectReference{
			APIVersion: v1.GroupVersion.String(), Kind: "TenantPurchasePolicy",
			Namespace: p.Namespace, Name: p.Name, UID: p.UID, ResourceVersion: p.ResourceVersion,
		},
	}
}

// reportingController names the controller in its Events.
const reportingController = "purchase-policy-controller"

// reportingInstance names this process in its Events as the recorder
// does: the controller and the host, at most 128 characters.
var reportingInstance = sync.OnceValue(func() string {
	host, _ := os.Hostname()
	return truncate(reportingController+"-"+host, 128)
})
