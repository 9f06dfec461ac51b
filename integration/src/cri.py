"""A minimal client of the Kubernetes CRI (runtime.v1) over gRPC, what kubelet speaks to containerd's
CRI plugin, for the integration tests (Debian has no crictl). Debian's python3-grpcio carries the
HTTP/2 and gRPC framing; the protobuf messages are encoded and decoded here from the table below
(field numbers from cri-api's api.proto), so no generated stubs are needed. Only the messages and
fields the tests use are listed; unknown fields of a response are skipped.

Usage: cri.py SOCKET METHOD REQUEST_JSON   (e.g. RuntimeService/Version '{}')
Prints the response as JSON; a gRPC error goes to stderr as "CODE: details", exit status 1.
"""

import json
import sys

import grpc

STR, I64, U32, I32, BOOL, MAP = "string", "int64", "uint32", "int32", "bool", "map"

# message: {field: (number, type)}; a type in a list is a repeated field.
SCHEMA = {
    "VersionRequest": {"version": (1, STR)},
    "VersionResponse": {"version": (1, STR), "runtime_name": (2, STR), "runtime_version": (3, STR),
                        "runtime_api_version": (4, STR)},
    "RunPodSandboxRequest": {"config": (1, "PodSandboxConfig"), "runtime_handler": (2, STR)},
    "RunPodSandboxResponse": {"pod_sandbox_id": (1, STR)},
    "PodSandboxConfig": {"metadata": (1, "PodSandboxMetadata"), "hostname": (2, STR), "log_directory": (3, STR),
                         "labels": (6, MAP), "annotations": (7, MAP), "linux": (8, "LinuxPodSandboxConfig")},
    "PodSandboxMetadata": {"name": (1, STR), "uid": (2, STR), "namespace": (3, STR), "attempt": (4, U32)},
    "LinuxPodSandboxConfig": {"cgroup_parent": (1, STR), "security_context": (2, "LinuxSandboxSecurityContext")},
    "LinuxSandboxSecurityContext": {"namespace_options": (1, "NamespaceOption"), "privileged": (6, BOOL)},
    # modes: POD 0, CONTAINER 1, NODE 2, TARGET 3
    "NamespaceOption": {"network": (1, I32), "pid": (2, I32), "ipc": (3, I32)},
    "StopPodSandboxRequest": {"pod_sandbox_id": (1, STR)},
    "RemovePodSandboxRequest": {"pod_sandbox_id": (1, STR)},
    "CreateContainerRequest": {"pod_sandbox_id": (1, STR), "config": (2, "ContainerConfig"),
                               "sandbox_config": (3, "PodSandboxConfig")},
    "CreateContainerResponse": {"container_id": (1, STR)},
    "ContainerConfig": {"metadata": (1, "ContainerMetadata"), "image": (2, "ImageSpec"), "command": (3, [STR]),
                        "args": (4, [STR]), "working_dir": (5, STR), "labels": (9, MAP), "annotations": (10, MAP),
                        "log_path": (11, STR), "linux": (15, "LinuxContainerConfig")},
    "ContainerMetadata": {"name": (1, STR), "attempt": (2, U32)},
    "ImageSpec": {"image": (1, STR)},
    "LinuxContainerConfig": {"resources": (1, "LinuxContainerResources")},
    "LinuxContainerResources": {"cpu_period": (1, I64), "cpu_quota": (2, I64), "cpu_shares": (3, I64),
                                "memory_limit_in_bytes": (4, I64), "oom_score_adj": (5, I64),
                                "cpuset_cpus": (6, STR), "cpuset_mems": (7, STR), "unified": (9, MAP),
                                "memory_swap_limit_in_bytes": (10, I64)},
    "StartContainerRequest": {"container_id": (1, STR)},
    "StopContainerRequest": {"container_id": (1, STR), "timeout": (2, I64)},
    "RemoveContainerRequest": {"container_id": (1, STR)},
    "ContainerStatusRequest": {"container_id": (1, STR), "verbose": (2, BOOL)},
    "ContainerStatusResponse": {"status": (1, "ContainerStatus"), "info": (2, MAP)},
    # states: CREATED 0, RUNNING 1, EXITED 2, UNKNOWN 3
    "ContainerStatus": {"id": (1, STR), "state": (3, I32), "exit_code": (7, I32), "reason": (10, STR),
                        "message": (11, STR), "log_path": (15, STR)},
    "Empty": {},
}

# method: (service, request message, response message)
METHODS = {
    "Version": ("RuntimeService", "VersionRequest", "VersionResponse"),
    "RunPodSandbox": ("RuntimeService", "RunPodSandboxRequest", "RunPodSandboxResponse"),
    "StopPodSandbox": ("RuntimeService", "StopPodSandboxRequest", "Empty"),
    "RemovePodSandbox": ("RuntimeService", "RemovePodSandboxRequest", "Empty"),
    "CreateContainer": ("RuntimeService", "CreateContainerRequest", "CreateContainerResponse"),
    "StartContainer": ("RuntimeService", "StartContainerRequest", "Empty"),
    "StopContainer": ("RuntimeService", "StopContainerRequest", "Empty"),
    "RemoveContainer": ("RuntimeService", "RemoveContainerRequest", "Empty"),
    "ContainerStatus": ("RuntimeService", "ContainerStatusRequest", "ContainerStatusResponse"),
}


def varint(n):
    n &= (1 << 64) - 1  # negative int64/int32 go as ten-byte two's complement
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field(num, wire, payload):
    return varint(num << 3 | wire) + payload


def encode_one(num, typ, v, where):
    if typ in (I64, U32, I32):
        if not isinstance(v, int) or isinstance(v, bool):
            raise SystemExit(f"{where}: {v!r} is not an integer")
        return field(num, 0, varint(v))
    if typ == BOOL:
        return field(num, 0, varint(1 if v else 0))
    if typ == STR:
        if not isinstance(v, str):
            raise SystemExit(f"{where}: {v!r} is not a string")
        b = v.encode()
        return field(num, 2, varint(len(b)) + b)
    if typ == MAP:
        out = b""
        for k, val in v.items():
            entry = encode_one(1, STR, k, where) + encode_one(2, STR, val, f"{where}[{k}]")
            out += field(num, 2, varint(len(entry)) + entry)
        return out
    body = encode(typ, v, where)
    return field(num, 2, varint(len(body)) + body)


def encode(msg, obj, where):
    schema = SCHEMA[msg]
    if not isinstance(obj, dict):
        raise SystemExit(f"{where}: a {msg} must be an object")
    out = b""
    for name, v in obj.items():
        if name not in schema:
            raise SystemExit(f"{where}.{name}: not a field of {msg} here (see SCHEMA in cri.py)")
        num, typ = schema[name]
        if isinstance(typ, list):
            for i, item in enumerate(v):
                out += encode_one(num, typ[0], item, f"{where}.{name}[{i}]")
        else:
            out += encode_one(num, typ, v, f"{where}.{name}")
    return out


def read_varint(b, i):
    n = shift = 0
    while True:
        c = b[i]
        i += 1
        n |= (c & 0x7F) << shift
        shift += 7
        if not c & 0x80:
            return n, i


def decode(msg, b):
    by_num = {num: (name, typ) for name, (num, typ) in SCHEMA[msg].items()}
    out = {}
    i = 0
    while i < len(b):
        key, i = read_varint(b, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            v, i = read_varint(b, i)
        elif wire == 2:
            n, i = read_varint(b, i)
            v, i = b[i:i + n], i + n
        elif wire == 1:
            v, i = b[i:i + 8], i + 8
        elif wire == 5:
            v, i = b[i:i + 4], i + 4
        else:
            raise SystemExit(f"{msg}: wire type {wire} of field {num} is not supported")
        if num not in by_num:
            continue
        name, typ = by_num[num]
        item = typ[0] if isinstance(typ, list) else typ
        if item in (I64, I32):
            v = v - (1 << 64) if v >= 1 << 63 else v
        elif item == U32:
            pass
        elif item == BOOL:
            v = bool(v)
        elif item == STR:
            v = v.decode()
        elif item == MAP:
            entry = decode("MapEntry", v)
            out.setdefault(name, {})[entry.get("key", "")] = entry.get("value", "")
            continue
        else:
            v = decode(item, v)
        if isinstance(typ, list):
            out.setdefault(name, []).append(v)
        else:
            out[name] = v
    return out


SCHEMA["MapEntry"] = {"key": (1, STR), "value": (2, STR)}


def main():
    if len(sys.argv) != 4 or sys.argv[2] not in METHODS:
        raise SystemExit(f"usage: cri.py SOCKET METHOD REQUEST_JSON; methods: {' '.join(METHODS)}")
    sock, method, request = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    service, req_msg, resp_msg = METHODS[method]
    body = encode(req_msg, request, req_msg)
    with grpc.insecure_channel(f"unix://{sock}") as ch:
        call = ch.unary_unary(f"/runtime.v1.{service}/{method}")
        try:
            resp = call(body, timeout=120)
        except grpc.RpcError as e:
            sys.stderr.write(f"{e.code().name}: {e.details()}\n")
            sys.exit(1)
    print(json.dumps(decode(resp_msg, resp)))


if __name__ == "__main__":
    main()
