#!/usr/bin/env python3
"""Checks deploy/ against the code it deploys (part of `make test`).

deploy/agent, as `kubectl kustomize deploy/agent` renders it (what `kubectl apply -k` applies):
- it renders, and holds both policy CRDs, the ServiceAccount, ClusterRole, ClusterRoleBinding and
  the DaemonSet;
- the ClusterRole grants get, list and watch on exactly the resources the watcher lists and
  watches (the paths in Sources/KubeAPI/KubeClient.swift), bound to the DaemonSet's account;
- every flag the containers pass to `balancer` is one the command accepts (`balancer <command>
  --help`), and every $(VAR) they use is in their env;
- the image: a version tag (the binary's own version, in daemonset.yaml and in the
  kustomization's `images:`), never `latest`, pulled IfNotPresent;
- hardening: nodeSelector kubernetes.io/os linux, requests (and a memory limit) on every
  container, a startup probe on the agent at its metrics port, metrics bound to the node's
  address (status.hostIP), no `privileged`, capabilities dropped (ALL) and added exactly as
  PRIVILEGES below says for the subcommand (docs/deployment.md, "What needs what"), and none of
  the combinations the API server refuses (allowPrivilegeEscalation false with CAP_SYS_ADMIN,
  Bidirectional mount propagation without privileged);
- the pin directory: one hostPath under /sys/fs/bpf, mounted where --pin-dir says.

deploy/host, the systemd units:
- `systemd-analyze verify` accepts each unit without a word (with /usr/bin/balancer standing for
  the binary under test and the environment file for /etc/default/balancer);
- every flag of every balancer command line (ExecStart, also inside `sh -c`), with the variables
  of balancer.default expanded, is one the command accepts; every variable used is defined
  there and every one defined is used;
- CapabilityBoundingSet holds what the unit's subcommands need (PRIVILEGES).

docs/deployment.md: every `balancer COMMAND --flag` of its code blocks exists.

Usage: deploy/check.py BALANCER_BINARY
"""
import os, re, shlex, shutil, subprocess, sys, tempfile
import yaml

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
binary = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, ".build/debug/balancer"))
failures = []
notes = []

# What each subcommand needs beyond an unprivileged root (docs/deployment.md, "What needs what";
# measured with the capabilities bounded by setpriv in a test cgroup and a private bpffs):
# attach: CAP_SYS_ADMIN (an attach over existing pins opens their programs by id; it also covers
#   the CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN checks of a first attach, and mounting a bpffs);
# load and watch: CAP_SYS_ADMIN (a generation's inner maps opened by id; setns into pods'
#   network namespaces) and CAP_SYS_PTRACE (/proc/PID/ns/net of other users' processes).
PRIVILEGES = {
    "attach": {"SYS_ADMIN"},
    "load": {"SYS_ADMIN", "SYS_PTRACE"},
    "watch": {"SYS_ADMIN", "SYS_PTRACE"},
}

helps = {}


def help_of(command):
    if command not in helps:
        helps[command] = subprocess.run([binary, command, "--help"], capture_output=True, text=True).stdout
    return helps[command]


def check_flags(where, argv):
    """argv: balancer's arguments (argv[0] the subcommand); returns how many flags were checked."""
    text = help_of(argv[0])
    if not text:
        failures.append(f"{where}: `balancer {argv[0]} --help` printed nothing (no such command?)")
        return 0
    n = 0
    for arg in argv[1:]:
        if arg.startswith("--"):
            flag = arg.split("=", 1)[0]
            n += 1
            if not re.search(re.escape(flag) + r"\b", text):
                failures.append(f"{where}: `balancer {argv[0]}` has no {flag}")
    return n


def binary_version():
    out = subprocess.run([binary, "version", "-o", "json"], capture_output=True, text=True)
    if out.returncode == 0:
        import json
        return json.loads(out.stdout)["version"]
    return subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.strip()


# --- deploy/agent, as kustomize renders it ---------------------------------------------------
docs = []
kubectl = shutil.which("kubectl")
if not kubectl:
    failures.append("kubectl not found: `kubectl kustomize deploy/agent` cannot be checked")
else:
    r = subprocess.run([kubectl, "kustomize", os.path.join(root, "deploy/agent")], capture_output=True, text=True)
    if r.returncode != 0:
        failures.append(f"kubectl kustomize deploy/agent failed: {r.stderr.strip()[:400]}")
    else:
        docs = [d for d in yaml.safe_load_all(r.stdout) if d]
if not docs:
    # Still check what can be checked: the files themselves.
    for f in ("rbac.yaml", "daemonset.yaml"):
        with open(os.path.join(root, "deploy/agent", f)) as fh:
            docs += [d for d in yaml.safe_load_all(fh) if d]


def one(kind):
    found = [d for d in docs if d.get("kind") == kind]
    if len(found) != 1:
        failures.append(f"deploy/agent renders {len(found)} {kind} objects, not 1")
        return {}
    return found[0]


crds = {d["metadata"]["name"] for d in docs if d.get("kind") == "CustomResourceDefinition"}
want_crds = {"localredirectpolicies.balancing.elf.io", "balancingpolicies.balancing.elf.io"}
if kubectl and crds != want_crds:
    failures.append(f"deploy/agent renders the CRDs {sorted(crds)}, not {sorted(want_crds)}")

# Resources the watcher uses: "/api/v1/services" -> ("", "services"); "/apis/G/V/R" -> (G, R).
src = open(os.path.join(root, "Sources/KubeAPI/KubeClient.swift")).read()
used = set()
for p in re.findall(r'path: "(/apis?/[^"]+)"', src):
    parts = p.strip("/").split("/")
    used.add(("", parts[2]) if parts[0] == "api" else (parts[1], parts[3]))

role = one("ClusterRole")
granted = set()
for rule in role.get("rules", []):
    if set(rule["verbs"]) != {"get", "list", "watch"}:
        failures.append(f"ClusterRole rule {rule} must grant exactly get, list, watch")
    for g in rule["apiGroups"]:
        for r in rule["resources"]:
            granted.add((g, r))
if granted != used:
    failures.append(f"ClusterRole grants {sorted(granted)} but the watcher uses {sorted(used)}")

sa = one("ServiceAccount")
binding = one("ClusterRoleBinding")
ds = one("DaemonSet")
spec = ds.get("spec", {}).get("template", {}).get("spec", {})
if spec.get("serviceAccountName") != sa.get("metadata", {}).get("name"):
    failures.append("the DaemonSet does not run as the ServiceAccount")
if binding and (binding["roleRef"]["name"] != role.get("metadata", {}).get("name")
                or binding["subjects"][0]["name"] != sa.get("metadata", {}).get("name")):
    failures.append("the ClusterRoleBinding does not bind the ClusterRole to the ServiceAccount")

version = binary_version()
release = re.match(r"[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.]+)?", version)
release = release.group(0) if release else version

if spec.get("nodeSelector", {}).get("kubernetes.io/os") != "linux":
    failures.append("the DaemonSet has no nodeSelector kubernetes.io/os: linux")
if spec.get("hostNetwork") is not True or spec.get("hostPID") is not True:
    failures.append("the DaemonSet needs hostNetwork and hostPID (the node's sockets and processes)")

volumes = {v["name"]: v for v in spec.get("volumes", [])}
containers = spec.get("initContainers", []) + spec.get("containers", [])
checked = 0
images = set()
for c in containers:
    name = c.get("name")
    cmd = c.get("command", []) + c.get("args", [])
    image = c.get("image", "")
    images.add(image)
    tag = image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else ""
    if not tag or tag == "latest":
        failures.append(f"{name}: image {image!r} has no version tag")
    elif tag != release:
        failures.append(f"{name}: image tag {tag} is not the version of balancer ({release})")
    if c.get("imagePullPolicy") != "IfNotPresent":
        failures.append(f"{name}: imagePullPolicy is {c.get('imagePullPolicy')!r}, not IfNotPresent (air-gapped nodes)")
    res = c.get("resources", {})
    if not {"cpu", "memory"} <= set(res.get("requests", {})):
        failures.append(f"{name}: no cpu and memory requests")
    if "memory" not in res.get("limits", {}):
        failures.append(f"{name}: no memory limit")
    sc = c.get("securityContext", {})
    caps = sc.get("capabilities", {})
    if sc.get("privileged"):
        failures.append(f"{name}: privileged (the capabilities of PRIVILEGES suffice)")
    if "ALL" not in caps.get("drop", []):
        failures.append(f"{name}: capabilities are not dropped (drop: [ALL])")
    added = set(caps.get("add", []))
    for cap in added:
        if not re.fullmatch(r"[A-Z_]+", cap) or cap.startswith("CAP_"):
            failures.append(f"{name}: capability {cap!r}: Kubernetes names them without CAP_ (SYS_ADMIN)")
    if sc.get("allowPrivilegeEscalation") is False and ("SYS_ADMIN" in added or sc.get("privileged")):
        failures.append(f"{name}: the API server refuses allowPrivilegeEscalation: false with CAP_SYS_ADMIN")
    if sc.get("readOnlyRootFilesystem") is not True:
        failures.append(f"{name}: the root file system is writable (balancer writes nothing there)")
    env = {e["name"]: e for e in c.get("env", [])}
    for arg in cmd:
        for var in re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", arg):
            if var not in env:
                failures.append(f"{name}: $({var}) is not in its env (Kubernetes would pass it literally)")
    mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}
    for m in mounts.values():
        if m.get("mountPropagation") == "Bidirectional" and not sc.get("privileged"):
            failures.append(f"{name}: the API server allows Bidirectional mount propagation only in privileged containers")
    if not cmd or cmd[0] != "balancer":
        continue
    sub = cmd[1]
    checked += check_flags(name, cmd[1:])
    need = PRIVILEGES.get(sub, set())
    if added != need:
        failures.append(f"{name}: `balancer {sub}` adds {sorted(added)}; it needs exactly {sorted(need)} (PRIVILEGES)")
    # The pin directory: mounted from the host's bpffs, where --pin-dir says.
    flags = dict(a[2:].split("=", 1) for a in cmd[2:] if a.startswith("--") and "=" in a)
    for i, a in enumerate(cmd[:-1]):
        if a.startswith("--") and "=" not in a and not cmd[i + 1].startswith("--"):
            flags.setdefault(a[2:], cmd[i + 1])
    pin = flags.get("pin-dir")
    m = mounts.get(pin)
    host = volumes.get(m["name"], {}).get("hostPath", {}).get("path", "") if m else ""
    if not host.startswith("/sys/fs/bpf/"):
        failures.append(f"{name}: --pin-dir {pin} is not a mount of a directory of the host's /sys/fs/bpf")
    if sub == "watch":
        addr = flags.get("metrics-address", "")
        hostpart, _, port = addr.rpartition(":")
        var = re.fullmatch(r"\$\(([A-Za-z_0-9]+)\)", hostpart)
        src_field = env.get(var.group(1), {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") if var else None
        if src_field not in ("status.hostIP",):
            failures.append(f"{name}: --metrics-address {addr!r} is not bound to the node's address ($(HOST_IP) from status.hostIP)")
        probe = c.get("startupProbe", {}).get("httpGet", {})
        if not probe:
            failures.append(f"{name}: no startup probe")
        for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
            p = c.get(kind, {}).get("httpGet", {})
            if p and (str(p.get("port")) != port or p.get("path") != "/healthz" or p.get("host")):
                failures.append(f"{name}: {kind} asks {p}, not /healthz on the metrics port {port} of the node")
        for cp in c.get("ports", []):
            if "hostPort" in cp and cp["hostPort"] != cp["containerPort"]:
                failures.append(f"{name}: with hostNetwork a hostPort must equal its containerPort")
if len(images) > 1:
    failures.append(f"the containers run different images: {sorted(images)}")
# daemonset.yaml applied on its own names the same image as the kustomization renders.
with open(os.path.join(root, "deploy/agent/daemonset.yaml")) as fh:
    raw = yaml.safe_load(fh)["spec"]["template"]["spec"]
for c in raw.get("initContainers", []) + raw.get("containers", []):
    if c.get("image") not in images:
        failures.append(f"daemonset.yaml: {c.get('name')} names {c.get('image')!r}, the kustomization renders {sorted(images)}")

with open(os.path.join(root, "deploy/agent/kustomization.yaml")) as fh:
    kust = yaml.safe_load(fh)
for entry in kust.get("images", []):
    if entry.get("newTag") != release:
        failures.append(f"kustomization images: {entry.get('name')} newTag {entry.get('newTag')!r} is not {release}")
if not kust.get("images"):
    failures.append("kustomization: no images: entry for operators to override")

# --- deploy/host ------------------------------------------------------------------------------
hostdir = os.path.join(root, "deploy/host")
defaults = {}
with open(os.path.join(hostdir, "balancer.default")) as fh:
    for line in fh:
        line = line.strip()
        if line and not line.startswith("#"):
            k, _, v = line.partition("=")
            defaults[k] = v
units = sorted(f for f in os.listdir(hostdir) if f.endswith(".service"))
if not units:
    failures.append("deploy/host holds no units")
used_vars = set()
unit_flags = 0


def expand(word):
    """systemd's expansion of one ExecStart word: ${VAR} anywhere, $VAR as a whole word split at
    spaces, $$ a literal $."""
    m = re.fullmatch(r"\$([A-Za-z_][A-Za-z0-9_]*)", word)
    if m:
        used_vars.add(m.group(1))
        return defaults.get(m.group(1), "").split()
    def sub(mm):
        used_vars.add(mm.group(1))
        return defaults.get(mm.group(1), "")
    return [re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", sub, word.replace("$$", "\0")).replace("\0", "$")]


for unit in units:
    text = open(os.path.join(hostdir, unit)).read()
    bounding = set()
    subs = set()
    for line in text.splitlines():
        if line.startswith("CapabilityBoundingSet="):
            bounding |= {c.removeprefix("CAP_") for c in line.split("=", 1)[1].split()}
        if not line.startswith("ExecStart="):
            continue
        words = [w for word in shlex.split(line.split("=", 1)[1]) for w in expand(word)]
        lines = [words]
        if words[:2] == ["/bin/sh", "-c"]:
            # The shell's own variables ($VAR after systemd's $$): the values of the file.
            script = words[2]
            for v in re.findall(r"\$([A-Za-z_][A-Za-z0-9_]*)", script):
                used_vars.add(v)
            for cmdline in re.findall(r"/usr/bin/balancer[^;]*", script):
                argv = []
                for w in shlex.split(cmdline):
                    m = re.fullmatch(r"\$([A-Za-z_][A-Za-z0-9_]*)", w)
                    argv += defaults.get(m.group(1), "").split() if m else [re.sub(r"\$([A-Za-z_][A-Za-z0-9_]*)", lambda mm: defaults.get(mm.group(1), ""), w)]
                lines.append(argv)
            lines = lines[1:]
        for argv in lines:
            if argv and argv[0] == "/usr/bin/balancer":
                subs.add(argv[1])
                unit_flags += check_flags(unit, argv[1:])
    need = set().union(*(PRIVILEGES.get(s, set()) for s in subs)) if subs else set()
    if not need <= bounding:
        failures.append(f"{unit}: CapabilityBoundingSet {sorted(bounding)} lacks {sorted(need - bounding)} (PRIVILEGES)")
    if "EnvironmentFile=/etc/default/balancer" not in text:
        failures.append(f"{unit}: does not read /etc/default/balancer")
for v in sorted(used_vars - set(defaults)):
    failures.append(f"deploy/host: ${v} is used by a unit but not set in balancer.default")
for v in sorted(set(defaults) - used_vars):
    failures.append(f"deploy/host: {v} is set in balancer.default but no unit uses it")

# systemd-analyze verify: the units as installed, the binary under test standing for
# /usr/bin/balancer and balancer.default for /etc/default/balancer.
analyze = shutil.which("systemd-analyze")
if analyze and units:
    with tempfile.TemporaryDirectory(prefix="balancer-units-") as tmp:
        for unit in units:
            text = open(os.path.join(hostdir, unit)).read()
            text = text.replace("/usr/bin/balancer", binary).replace("/etc/default/balancer", os.path.join(hostdir, "balancer.default"))
            with open(os.path.join(tmp, unit), "w") as fh:
                fh.write(text)
        r = subprocess.run([analyze, "verify", *[os.path.join(tmp, u) for u in units]], capture_output=True, text=True, cwd=tmp)
        said = (r.stdout + r.stderr).strip()
        if r.returncode != 0 or said:
            failures.append(f"systemd-analyze verify: {said[:600] or 'exit status %d' % r.returncode}")
elif units:
    notes.append("systemd-analyze not found: the units' syntax was not verified (their flags were)")

# --- docs/deployment.md: every balancer command line it shows -------------------------------------
doc_flags = 0
doc = open(os.path.join(root, "docs/deployment.md")).read()
top_help = subprocess.run([binary, "--help"], capture_output=True, text=True).stdout
commands = set(re.findall(r"^  ([a-z-]+) ", top_help, re.M))
for block in re.findall(r"^```[a-z]*\n(.*?)^```", doc, re.S | re.M):
    for line in block.splitlines():
        line = re.sub(r"\s#.*$", "", line.removeprefix("$ "))
        for m in re.finditer(r"(?:^|[|;&]\s*|\s--\s|\bexec\s)balancer\s+([a-z-]+)([^|;&]*)", line):
            sub, rest = m.group(1), m.group(2)
            if sub not in commands:
                failures.append(f"docs/deployment.md: `balancer {sub}` is not a command: {line.strip()}")
                continue
            doc_flags += check_flags("docs/deployment.md", [sub] + [w for w in rest.split() if w.startswith("--")])

for f in failures:
    print("FAIL", f)
for n in notes:
    print("note:", n)
print(f"deploy/agent: {len(crds)} CRDs, {len(used)} resources granted as used, {checked} balancer flags checked, "
      f"image tag {release}, capabilities as PRIVILEGES; deploy/host: {len(units)} units verified, {unit_flags} flags checked; "
      f"docs/deployment.md: {doc_flags} flags checked; {len(failures)} problems")
sys.exit(1 if failures else 0)
