#!/usr/bin/env python3
"""Prints the containers, init containers and volumes that
istio-operator.yaml patches into the gateway Deployment as one stand-alone
Deployment, so that `kubernetes-validate --strict` can check them (it has no
schema for the IstioOperator CRD). Used by .ci/run; needs PyYAML."""
import sys

import yaml

with open(sys.argv[1] if len(sys.argv) > 1 else "istio/istio-operator.yaml") as f:
    operator = yaml.safe_load(f)

pod = {
    # Stands for the gateway's own container, which the overlay keeps at [0].
    "containers": [{"name": "istio-proxy", "image": "istio/proxyv2"}],
    "volumes": [],
}
for gateway in operator["spec"]["components"]["ingressGateways"]:
    for overlay in gateway["k8s"]["overlays"]:
        assert overlay["kind"] == "Deployment", overlay["kind"]
        for patch in overlay["patches"]:
            path = patch["path"]
            assert path.startswith("spec.template.spec."), path
            field = path[len("spec.template.spec."):]
            name, _, index = field.partition("[")
            if index:
                pod.setdefault(name, []).append(patch["value"])
            else:
                pod[name] = patch["value"]

labels = {"app": "istio-ingressgateway"}
deployment = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "overlay-check", "namespace": "istio-system"},
    "spec": {
        "selector": {"matchLabels": labels},
        "template": {"metadata": {"labels": labels}, "spec": pod},
    },
}
yaml.safe_dump(deployment, sys.stdout, sort_keys=False)
