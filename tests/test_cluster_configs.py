"""configs/cluster/: the Ray cluster-launcher YAML passes Ray's own validation (what ``ray up`` runs first), and the
KubeRay RayJob has the fields KubeRay requires, runs this package's command on a valid run config, and exposes the
head's dashboard for job submission."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import yaml

from genetic_sizer.config import RunConfig

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = ROOT / "configs" / "cluster"


def _pinned(name: str) -> str:
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.lower().startswith(f"{name}=="):
            return line.split("==", 1)[1]
    raise AssertionError(f"{name} is not pinned")


def test_cluster_launcher_config_passes_rays_validation():
    from ray.autoscaler._private.util import prepare_config, validate_config

    raw = yaml.safe_load((CLUSTER / "ray-cluster.yaml").read_text())
    config = prepare_config(copy.deepcopy(raw))  # ray up: defaults filled in, then the schema
    validate_config(config)
    assert raw["head_node_type"] in raw["available_node_types"]
    head = " ".join(raw["head_start_ray_commands"])
    assert re.search(r"ray start --head --port=6379 .*--dashboard-host=0\.0\.0\.0 --dashboard-port=8265", head)
    assert any("ray start --address=$RAY_HEAD_IP:6379" in c for c in raw["worker_start_ray_commands"])
    assert raw["file_mounts"] == {"~/genetic_sizer": "."}  # this checkout on every node...
    assert any("pip install" in c and "-c ~/genetic_sizer/constraints.txt" in c for c in raw["setup_commands"])


def test_kuberay_rayjob_runs_this_package_with_the_dashboard_exposed():
    docs = list(yaml.safe_load_all((CLUSTER / "rayjob.yaml").read_text()))
    configmap = next(d for d in docs if d["kind"] == "ConfigMap")
    job = next(d for d in docs if d["kind"] == "RayJob")
    assert job["apiVersion"] == "ray.io/v1" and job["metadata"]["name"]
    spec = job["spec"]
    cluster = spec["rayClusterSpec"]
    assert cluster["rayVersion"] == _pinned("ray")
    head = cluster["headGroupSpec"]
    assert head["rayStartParams"]["dashboard-host"] == "0.0.0.0"
    (container,) = head["template"]["spec"]["containers"]
    assert {"containerPort": 8265, "name": "dashboard"} in container["ports"]
    for group in cluster["workerGroupSpecs"]:
        assert group["groupName"] and group["replicas"] >= group.get("minReplicas", 0)
        assert "rayStartParams" in group
        assert all(c["image"] == container["image"] for c in group["template"]["spec"]["containers"])
    # the entrypoint is genetic-sizer evolve on the config the ConfigMap mounts, which is a valid run config
    words = spec["entrypoint"].split()
    assert words[:3] == ["genetic-sizer", "evolve", "--config"]
    mount = next(m for m in container["volumeMounts"] if words[3].startswith(m["mountPath"] + "/"))
    volume = next(v for v in head["template"]["spec"]["volumes"] if v["name"] == mount["name"])
    assert volume["configMap"]["name"] == configmap["metadata"]["name"]
    run = RunConfig.from_dict(yaml.safe_load(configmap["data"][Path(words[3]).name]))
    assert run.parallel.backend == "ray" and run.parallel.address is None  # the cluster KubeRay starts
    assert words[words.index("--out") + 1].startswith("s3://")  # the run outlives the cluster


def test_the_image_is_rays_with_this_package_at_the_pinned_versions():
    text = (CLUSTER / "Dockerfile").read_text()
    assert f"FROM rayproject/ray:{_pinned('ray')}-py311" in text
    assert re.search(r"pip install .*-c \S*constraints\.txt", text)
