// Package schedulecontroller is the scheduled-scaling controller of
// kube-metrics-adapter (--scaling-schedule). Every tick (10 s by default, as in
// the original) it does two things, both from informer caches, never from a
// LIST per tick:
//
//  1. Status: status.active of every ScalingSchedule and ClusterScalingSchedule
//     (zalando.org/v1) is set to schedule.Evaluate(spec, now, opts).Active,
//     through the /status subresource, and only when it changes. A spec that
//     does not validate keeps its status; the problem is logged and reported as
//     one Warning event (ReasonInvalidSchedule) on the object per change of the
//     object or of the problem.
//
//  2. Adjuster: the HPA controller leaves a target alone while the usage ratio
//     of its metrics is within --horizontal-pod-autoscaler-tolerance of 1, so a
//     schedule asking for 10.5 pods' worth of load on 10 pods never gets its
//     11th pod. For each HPA with status.currentReplicas > 0, each Object metric
//     describing a (Cluster)ScalingSchedule with a non-zero target.averageValue
//     gives expected = ceil(ActiveMax / averageValue) (the full value of the
//     active schedules, not the ramped one); the highest over the metrics,
//     capped at spec.maxReplicas, is the HPA's expected count. If it is above
//     currentReplicas and the usage ratio of that metric, ActiveMax /
//     (averageValue × currentReplicas), is within the tolerance of 1, the
//     controller sets the scale target's replicas to expected through its /scale
//     subresource and records a Normal event ReasonScalingAdjusted on the HPA.
//     The HPA's own spec.behavior.scaleUp.tolerance, when set, replaces the
//     flag's tolerance for that HPA, as it does in the HPA controller; an HPA
//     whose spec.behavior.scaleUp.selectPolicy is Disabled is left alone.
//
// A metric whose schedule object is missing (not created yet, deleted, a typo
// in the HPA) is skipped and logged once until it appears; it never stops the
// HPA's other metrics or other HPAs.
//
// # Differences from the original
//
//   - The original LISTed every HPA in the cluster every 10 s; here HPAs come
//     from an informer's lister.
//   - The original took the usage ratio of the last schedule metric of an HPA,
//     whichever gave the highest expected count; here it is the ratio of the
//     metric that gives the highest expected count.
//   - The original truncated target.averageValue to an integer (500m became 0
//     and the metric was skipped); here it is exact to the milli-unit.
//   - An invalid spec produced no event; here it is one Warning event per change.
//   - The original scaled up HPAs whose scaling up was disabled
//     (selectPolicy: Disabled); here they are left alone.
package schedulecontroller
