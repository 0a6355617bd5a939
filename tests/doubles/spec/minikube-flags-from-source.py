#!/usr/bin/env python3
"""Writes spec/minikube-v<TAG>.flags from minikube's Go sources (no minikube binary can run here).

Usage: minikube-flags-from-source.py <minikube git dir> <tag> > minikube-<tag>.flags

Reads every `<cmdVar>.Flags()` / `.PersistentFlags()` definition of the commands the doubles answer,
resolves flag-name constants from the package sources, and notes NoOptDefVal and MarkDeprecated/MarkHidden
(hidden flags are accepted by cobra, so they are kept). klog's flags reach the root through
`pflag.CommandLine.AddGoFlagSet(flag.CommandLine)` (cmd/minikube/cmd/root.go), with their Go names.
"""
import re
import subprocess
import sys

git_dir, tag = sys.argv[1], sys.argv[2]


def show(path):
    return subprocess.run(["git", "-C", git_dir, "show", f"{tag}:{path}"], capture_output=True, text=True, check=True).stdout


def ls(prefix):
    out = subprocess.run(["git", "-C", git_dir, "ls-tree", "-r", "--name-only", tag, prefix], capture_output=True, text=True, check=True).stdout
    return [p for p in out.split() if p.endswith(".go") and not p.endswith("_test.go")]


# String constants of the packages the flag names come from.
consts = {}
for f in ls("cmd/minikube/cmd") + ls("cmd/minikube/cmd/config") + ls("pkg/minikube/config") + ls("pkg/minikube/constants") + ls("pkg/minikube/flags"):
    for m in re.finditer(r'^\s*(?:const\s+)?(\w+)\s*(?:string\s*)?=\s*"([^"]*)"', show(f), re.M):
        consts.setdefault(m.group(1), m.group(2))

COMMANDS = [
    ("", "RootCmd", ["cmd/minikube/cmd/root.go"]),
    ("status", "statusCmd", ["cmd/minikube/cmd/status.go"]),
    ("start", "startCmd", ["cmd/minikube/cmd/start_flags.go", "cmd/minikube/cmd/start.go"]),
    ("stop", "stopCmd", ["cmd/minikube/cmd/stop.go"]),
    ("delete", "deleteCmd", ["cmd/minikube/cmd/delete.go"]),
    ("ip", "ipCmd", ["cmd/minikube/cmd/ip.go"]),
    ("version", "versionCmd", ["cmd/minikube/cmd/version.go"]),
    ("update-context", "updateContextCmd", ["cmd/minikube/cmd/update-context.go"]),
    ("docker-env", "dockerEnvCmd", ["cmd/minikube/cmd/docker-env.go"]),
    ("profile", "ProfileCmd", ["cmd/minikube/cmd/config/profile.go"]),
    ("profile list", "profileListCmd", ["cmd/minikube/cmd/config/profile_list.go"]),
    ("image", "imageCmd", ["cmd/minikube/cmd/image.go"]),
    ("image load", "loadImageCmd", ["cmd/minikube/cmd/image.go"]),
    ("image ls", "listImageCmd", ["cmd/minikube/cmd/image.go"]),
    ("image rm", "removeImageCmd", ["cmd/minikube/cmd/image.go"]),
]

TYPES = {"Bool": "bool", "String": "string", "Int": "int", "Int64": "int64", "Uint": "uint", "Uint16": "uint16",
         "Duration": "duration", "StringSlice": "strings", "StringArray": "stringArray", "IPSlice": "ipSlice",
         "IntSlice": "ints", "Float64": "float64", "": "value"}


def split_args(s):
    """Top-level comma split of a Go call's arguments (the text after the opening parenthesis)."""
    depth, cur, out, q = 0, "", [], None
    for ch in s:
        if q:
            cur += ch
            if ch == q and not cur.endswith("\\" + q):
                q = None
            continue
        if ch in "\"`":
            q = ch
            cur += ch
            continue
        if ch in "([{":
            depth += 1
        if ch in ")]}":
            if depth == 0:
                out.append(cur.strip())
                return out
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
            continue
        cur += ch
    out.append(cur.strip())
    return out


def name_of(expr):
    if expr.startswith('"'):
        return expr.strip('"')
    return consts.get(expr.split(".")[-1])


print(f"# minikube {tag}: flags read from the sources of kubernetes/minikube {tag} by spec/minikube-flags-from-source.py")
print("# (`<cmd>.Flags()`/`.PersistentFlags()` per command; klog's Go flags on the root). Format: spec/PROVENANCE.md.")
print(f"# version {tag}")
for path, var, files in COMMANDS:
    flags = {}
    no_opt, deprecated = {}, {}
    for f in files:
        src = show(f)
        for m in re.finditer(re.escape(var) + r'\.(?:Persistent)?Flags\(\)\.(\w+)\(', src):
            method = m.group(1)
            args = split_args(src[m.end():])
            if method == "Lookup":
                continue
            if method in ("MarkDeprecated",):
                deprecated[name_of(args[0])] = args[1].strip('"')
                continue
            if method.startswith("Mark") or method in ("Changed", "Set", "SetAnnotation", "VisitAll", "AddFlag"):
                continue
            short = None
            base = method
            if base.endswith("P") and base not in ("IPSlice",):
                base = base[:-1]
                has_short = True
            else:
                has_short = False
            ptr = base.endswith("Var")
            if ptr:
                base = base[:-3]
            i = 1 if ptr else 0
            name = name_of(args[i])
            if has_short:
                short = args[i + 1].strip('"')
            if name is None:
                sys.exit(f"{f}: cannot resolve the flag name {args[i]!r} of {var}")
            ty = TYPES.get(base)
            if ty is None:
                sys.exit(f"{f}: unknown flag method {method}")
            flags[name] = (short, ty)
        for m in re.finditer(re.escape(var) + r'\.(?:Persistent)?Flags\(\)\.Lookup\(([^)]*)\)\.NoOptDefVal\s*=\s*"([^"]*)"', src):
            no_opt[name_of(m.group(1))] = m.group(2)
    if path == "":
        # klog v2 InitFlags (k8s.io/klog/v2 klog.go), added unchanged (Go names) to the root's flag set.
        for name, ty in [("add_dir_header", "bool"), ("alsologtostderr", "bool"), ("log_backtrace_at", "traceLocation"),
                         ("log_dir", "string"), ("log_file", "string"), ("log_file_max_size", "uint"),
                         ("logtostderr", "bool"), ("one_output", "bool"), ("skip_headers", "bool"),
                         ("skip_log_headers", "bool"), ("stderrthreshold", "severity"), ("v", "Level"),
                         ("vmodule", "moduleSpec")]:
            flags.setdefault(name, ("v" if name == "v" else None, ty))
        # cobra's default help flag, on every command.
        flags.setdefault("help", ("h", "bool"))
    print(f"\n[{path}]")
    for name in sorted(flags):
        short, ty = flags[name]
        line = f"{'-' + short if short else '-'} --{name} {ty}"
        if name in no_opt:
            line += f" ={no_opt[name]}"
        if name in deprecated:
            line += f" deprecated={deprecated[name]}"
        print(line)
