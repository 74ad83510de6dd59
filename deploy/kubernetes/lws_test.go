package kubernetes

import (
	"fmt"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// The LeaderWorkerSet API (group leaderworkerset.x-k8s.io, version v1),
// written here from its definition in kubernetes-sigs/lws
// (api/leaderworkerset/v1/leaderworkerset_types.go and the CRD generated
// from it, config/crd/bases/leaderworkerset.x-k8s.io_leaderworkersets.yaml)
// at commit 060ab4da17eea1f0865fcbd3236bb1075e2cea32 (v0.10.0 + 11
// commits). Its Go module, sigs.k8s.io/lws, is not served by the module
// proxy this project uses, so the fields are restated: the same JSON names
// and Go types, the pod templates and claims as the real k8s.io/api types.
// Strict decoding into these rejects any field the API does not have;
// validate adds the CRD's enums, bounds and required fields.

type leaderWorkerSet struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              lwsSpec `json:"spec"`
	// status is written by the controller; a manifest has none.
}

type lwsSpec struct {
	Replicas             *int32               `json:"replicas,omitempty"`
	LeaderWorkerTemplate leaderWorkerTemplate `json:"leaderWorkerTemplate"`
	RolloutStrategy      rolloutStrategy      `json:"rolloutStrategy,omitempty"`
	StartupPolicy        string               `json:"startupPolicy"`
	NetworkConfig        *networkConfig       `json:"networkConfig,omitempty"`
}

type leaderWorkerTemplate struct {
	LeaderTemplate                       *corev1.PodTemplateSpec                                 `json:"leaderTemplate,omitempty"`
	WorkerTemplate                       corev1.PodTemplateSpec                                  `json:"workerTemplate"`
	Size                                 *int32                                                  `json:"size,omitempty"`
	RestartPolicy                        string                                                  `json:"restartPolicy,omitempty"`
	SubGroupPolicy                       *subGroupPolicy                                         `json:"subGroupPolicy,omitempty"`
	VolumeClaimTemplates                 []corev1.PersistentVolumeClaim                          `json:"volumeClaimTemplates,omitempty"`
	PersistentVolumeClaimRetentionPolicy *appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy `json:"persistentVolumeClaimRetentionPolicy,omitempty"`
}

type rolloutStrategy struct {
	Type                       string                      `json:"type"`
	RollingUpdateConfiguration *rollingUpdateConfiguration `json:"rollingUpdateConfiguration,omitempty"`
}

type rollingUpdateConfiguration struct {
	Partition      *int32             `json:"partition,omitempty"`
	MaxUnavailable intstr.IntOrString `json:"maxUnavailable,omitempty"`
	MaxSurge       intstr.IntOrString `json:"maxSurge,omitempty"`
}

type subGroupPolicy struct {
	Type         *string `json:"subGroupPolicyType,omitempty"`
	SubGroupSize *int32  `json:"subGroupSize,omitempty"`
}

type networkConfig struct {
	SubdomainPolicy *string `json:"subdomainPolicy"`
}

// validate checks what the CRD's schema adds to the types: enums, the
// bounds of replicas and the required fields (the API server fills the
// defaults of those left out).
func (l *leaderWorkerSet) validate() error {
	s := l.Spec
	oneOf := func(field, v string, allowed ...string) error {
		if v != "" && !slices.Contains(allowed, v) {
			return fmt.Errorf("%s %q: want one of %v", field, v, allowed)
		}
		return nil
	}
	if l.APIVersion != "leaderworkerset.x-k8s.io/v1" || l.Kind != "LeaderWorkerSet" {
		return fmt.Errorf("apiVersion %q kind %q", l.APIVersion, l.Kind)
	}
	if l.Name == "" {
		return fmt.Errorf("metadata.name is required")
	}
	if r := s.Replicas; r != nil && (*r < 0 || *r > 1000000) {
		return fmt.Errorf("spec.replicas %d outside 0…1000000", *r)
	}
	t := s.LeaderWorkerTemplate
	if n := t.Size; n != nil && *n < 1 {
		return fmt.Errorf("spec.leaderWorkerTemplate.size %d: the minimum is 1 (the leader)", *n)
	}
	if len(t.WorkerTemplate.Spec.Containers) == 0 {
		return fmt.Errorf("spec.leaderWorkerTemplate.workerTemplate has no container")
	}
	if p := s.NetworkConfig; p != nil && p.SubdomainPolicy == nil {
		return fmt.Errorf("spec.networkConfig.subdomainPolicy is required")
	}
	if g := t.SubGroupPolicy; g != nil && g.Type != nil {
		if err := oneOf("spec.leaderWorkerTemplate.subGroupPolicy.subGroupPolicyType", *g.Type, "LeaderWorker", "LeaderExcluded"); err != nil {
			return err
		}
	}
	for _, err := range []error{
		oneOf("spec.startupPolicy", s.StartupPolicy, "LeaderCreated", "LeaderReady"),
		oneOf("spec.leaderWorkerTemplate.restartPolicy", t.RestartPolicy, "Default", "RecreateGroupOnPodRestart", "RecreateGroupAfterStart", "None"),
		oneOf("spec.rolloutStrategy.type", s.RolloutStrategy.Type, "RollingUpdate"),
	} {
		if err != nil {
			return err
		}
	}
	if s.NetworkConfig != nil {
		if err := oneOf("spec.networkConfig.subdomainPolicy", *s.NetworkConfig.SubdomainPolicy, "Shared", "UniquePerReplica"); err != nil {
			return err
		}
	}
	if s.RolloutStrategy.RollingUpdateConfiguration != nil && s.RolloutStrategy.Type == "" {
		return fmt.Errorf("spec.rolloutStrategy.type is required")
	}
	return nil
}
