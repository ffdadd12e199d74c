"""Labels, propagation filters, owner references, content hashes."""

from __future__ import annotations

from berth_operator.render.desired import Observed, render
from berth_operator.render.meta import (
    APPLIED_HASH,
    Subject,
    child_labels,
    digest,
    propagated,
    stamp,
)

from tests.unit.operator.factories import IMAGES, PASSWORDS, rendered, spec, subject

GITOPS = {
    "argocd.argoproj.io/instance": "app",
    "argocd.argoproj.io/tracking-id": "app:berth.dev/AgentDeployment:ns/demo",
    "kustomize.toolkit.fluxcd.io/name": "flux",
    "kustomize.toolkit.fluxcd.io/namespace": "flux-system",
    "kubectl.kubernetes.io/last-applied-configuration": "{}",
    "app.kubernetes.io/instance": "app",
    "berth.dev/last-handled-configuration": "{}",
    "kopf.zalando.org/touch": "x",
}


def test_gitops_tracking_and_client_bookkeeping_are_not_propagated() -> None:
    assert propagated({**GITOPS, "team": "ai", "example.com/cost-center": "42"}) == {
        "team": "ai",
        "example.com/cost-center": "42",
    }


def test_children_never_carry_tracking_metadata() -> None:
    subj = subject(labels={**GITOPS, "team": "ai"}, annotations={**GITOPS, "note": "n"})
    d = render(subj, spec(), Observed(), PASSWORDS, IMAGES)
    for o in d.objects:
        meta = o["metadata"]
        for key in GITOPS:
            assert key not in meta.get("labels", {}), (o["kind"], key)
            assert key not in meta.get("annotations", {}), (o["kind"], key)
        assert meta["labels"]["team"] == "ai"
        assert meta["annotations"]["note"] == "n"
        template = o.get("spec", {}).get("template", {}).get("metadata", {})
        for key in GITOPS:
            assert key not in template.get("labels", {})
            assert key not in template.get("annotations", {})


def test_recommended_labels_and_owner_reference() -> None:
    labels = child_labels(subject(), "server")
    assert labels == {
        "app.kubernetes.io/name": "berth-runtime",
        "app.kubernetes.io/component": "server",
        "app.kubernetes.io/part-of": "berth",
        "app.kubernetes.io/managed-by": "berth-operator",
        "berth.dev/agentdeployment": "demo",
    }
    for o in rendered().objects:
        refs = o["metadata"].get("ownerReferences")
        if refs:
            assert refs == [
                {
                    "apiVersion": "berth.dev/v1alpha1",
                    "kind": "AgentDeployment",
                    "name": "demo",
                    "uid": "uid-1",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ]


def test_stamp_is_stable_and_content_sensitive() -> None:
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"a": "1"}}
    once = stamp(obj)
    assert stamp(once) == once
    changed = stamp({**obj, "data": {"a": "2"}})
    assert (
        once["metadata"]["annotations"][APPLIED_HASH]
        != changed["metadata"]["annotations"][APPLIED_HASH]
    )
    assert digest({"a": 1, "b": 2}) == digest({"b": 2, "a": 1})


def test_relabelling_the_resource_does_not_touch_pod_templates() -> None:
    plain = render(subject(), spec(), Observed(), PASSWORDS, IMAGES)
    labelled = render(subject(labels={"team": "ai"}), spec(), Observed(), PASSWORDS, IMAGES)
    for a, b in zip(plain.objects, labelled.objects, strict=True):
        if "template" in a.get("spec", {}):
            assert a["spec"]["template"] == b["spec"]["template"], a["kind"]
            assert b["metadata"]["labels"]["team"] == "ai"


def test_subject_from_an_api_body() -> None:
    body = {
        "apiVersion": "berth.dev/v1alpha1",
        "kind": "AgentDeployment",
        "metadata": {
            "name": "demo",
            "namespace": "ns1",
            "uid": "u-9",
            "generation": 4,
            "labels": {"team": "ai"},
        },
    }
    s = Subject.from_body(body)
    assert (s.name, s.namespace, s.uid, s.generation) == ("demo", "ns1", "u-9", 4)
    assert s.labels == {"team": "ai"} and s.annotations == {}
