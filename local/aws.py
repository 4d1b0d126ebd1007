"""Local AWS: a moto server subprocess with what `template.yaml` declares, and the template's
intrinsic functions resolved against it.

* `MotoServer` runs moto's server (``python -m local.moto_server``: ``moto.server`` with the
  changes that let it hold a season, and `local.moto_streams`: DynamoDB Streams as the event outbox
  needs them) in its own process group and waits until it answers.
* `create_resources` creates every DynamoDB table (key schema, indexes, TTL, streams), Scheduler
  schedule group, EventBridge bus, SQS queue (attributes and redrive policies), SNS topic and Secrets Manager secret
  of the template, and verifies the SES sender. The Nuki token secret holds ``NUKI_API_TOKEN``; the
  webhook secret holds a random value until ``tools.register_webhook`` stores the real one, as in
  a deployed stack.
* `LocalResources` is the result: the physical id and attributes of every resource, the
  parameters and the pseudo parameters. It resolves ``!Ref``, ``!GetAtt``, ``!Sub``, ``!Join``,
  ``!Select``, ``!If`` and conditions, so `function_environment` gives each function the
  environment its Lambda would get (Globals + its own variables). It is JSON-serialisable, for the
  runtime process.

Physical names follow CloudFormation's shape without its random suffix: ``<stack>-<LogicalId>``
unless the template names the resource. ``!Ref`` of a secret is its ARN, as in CloudFormation.
Nothing here sets ``AWS_ENDPOINT_URL`` in this process: clients get the endpoint explicitly, so a
test process that uses ``mock_aws`` elsewhere is not redirected.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shlex
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import parseaddr
from pathlib import Path
from typing import IO, Any

from local import cfn

DEFAULT_REGION = "eu-central-1"
ACCOUNT_ID = "123456789012"  # moto's default account
DEFAULT_STACK_NAME = "staykey"
LOCAL_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_SESSION_TOKEN": "local",
}


class LocalAwsError(RuntimeError):
    pass


# --------------------------------------------------------------------------------------- processes


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (for subprocesses that cannot report the port they bound)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the child gets SIGTERM when the process that started it dies, even by SIGKILL."""
    os.setsid()
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except OSError:
            pass


Output = IO[bytes] | int | None


def spawn(args: list[str], env: Mapping[str, str], stdout: Output, stderr: Output) -> subprocess.Popen[bytes]:
    """Start a child in its own process group, tied to our life (see `stop_process`)."""
    return subprocess.Popen(
        args,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
        preexec_fn=_die_with_parent,
        cwd=str(cfn.ROOT),
    )


def stop_process(proc: subprocess.Popen[bytes] | None, grace: float = 5.0) -> None:
    """SIGTERM the child's process group, then SIGKILL it after `grace` seconds; reap it."""
    if proc is None or proc.poll() is not None:
        if proc is not None:
            proc.wait()
        return
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    # Whatever the group leader left behind in its group.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def http_ok(url: str, timeout: float = 0.5) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as resp:
            return bool(200 <= resp.status < 500)
    except urllib.error.HTTPError as exc:
        return exc.code < 500
    except OSError:
        return False


@dataclass
class MotoServer:
    """moto's server (`local.moto_server`) on ``host:port`` (port 0: a free one) in its own process group."""

    host: str = "127.0.0.1"
    port: int = 0
    log_path: Path | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> MotoServer:
        attempts = 3 if self.port == 0 else 1
        for attempt in range(attempts):
            port = self.port or free_port(self.host)
            if self.log_path is not None:
                self.log_path.parent.mkdir(parents=True, exist_ok=True)
                self._log = self.log_path.open("ab")
            env = {**os.environ, **LOCAL_CREDENTIALS, "AWS_DEFAULT_REGION": DEFAULT_REGION}
            env.pop("AWS_ENDPOINT_URL", None)
            self.proc = spawn(
                [sys.executable, "-m", "local.moto_server", "-H", self.host, "-p", str(port)],
                env,
                self._log if self._log is not None else subprocess.DEVNULL,
                subprocess.STDOUT if self._log is not None else subprocess.DEVNULL,
            )
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                if http_ok(f"http://{self.host}:{port}/moto-api/"):
                    self.port = port
                    return self
                time.sleep(0.05)
            running = self.proc.poll() is None
            self.stop()
            if running:
                raise LocalAwsError(f"moto server did not answer on port {port} within {timeout:g}s")
            if attempt == attempts - 1:
                raise LocalAwsError(
                    f"moto server exited at start on port {port} (port taken?); see {self.log_path or 'its output'}"
                )
        raise AssertionError("unreachable")  # pragma: no cover

    def stop(self) -> None:
        stop_process(self.proc)
        self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None


# --------------------------------------------------------------------------------------- the template


def _is_tag(value: Any, name: str | None = None) -> bool:
    return isinstance(value, cfn.Tag) and (name is None or value.tag == name)


_SUB = re.compile(r"\$\{([^}]+)\}")


@dataclass
class LocalResources:
    """Physical ids and attributes of the template's resources in the local stack."""

    stack_name: str
    region: str
    account_id: str
    endpoint: str
    parameters: dict[str, str]
    refs: dict[str, str] = field(default_factory=dict)  # logical id -> Ref value
    attrs: dict[str, dict[str, str]] = field(default_factory=dict)  # logical id -> GetAtt values
    types: dict[str, str] = field(default_factory=dict)  # logical id -> resource type

    # ---- serialisation, for the runtime process

    def to_json(self) -> str:
        return json.dumps(self.__dict__, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, raw: str) -> LocalResources:
        return cls(**json.loads(raw))

    # ---- the pieces the local stack needs by name

    def of_type(self, kind: str) -> dict[str, str]:
        return {logical: self.refs[logical] for logical, t in self.types.items() if t == kind}

    @property
    def queue_urls(self) -> dict[str, str]:
        return self.of_type("AWS::SQS::Queue")

    def queue_arn(self, logical_id: str) -> str:
        return self.attrs[logical_id]["Arn"]

    @property
    def schedule_groups(self) -> list[str]:
        return list(self.of_type("AWS::Scheduler::ScheduleGroup").values())

    def function_name(self, logical_id: str) -> str:
        return self.refs[logical_id]

    def function_arn(self, logical_id: str) -> str:
        return self.attrs[logical_id]["Arn"]

    def pseudo(self) -> dict[str, str]:
        return {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account_id,
            "AWS::StackName": self.stack_name,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackId": f"arn:aws:cloudformation:{self.region}:{self.account_id}:stack/{self.stack_name}/local",
        }

    # ---- intrinsic functions

    def ref(self, name: str) -> str | None:
        if name == "AWS::NoValue":
            return None
        pseudo = self.pseudo()
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.refs:
            return self.refs[name]
        raise LocalAwsError(f"!Ref {name}: not a parameter or resource of the template")

    def get_att(self, logical_id: str, attr: str) -> str:
        try:
            return self.attrs[logical_id][attr]
        except KeyError:
            raise LocalAwsError(f"!GetAtt {logical_id}.{attr}: not known to the local stack") from None

    def condition(self, name: str) -> bool:
        conditions = cfn.load_template().get("Conditions") or {}
        if name not in conditions:
            raise LocalAwsError(f"condition {name!r} is not declared")
        return bool(self.resolve(conditions[name]))

    def resolve(self, value: Any) -> Any:
        """The value with every intrinsic function evaluated (None for AWS::NoValue)."""
        if isinstance(value, dict):
            out = {k: self.resolve(v) for k, v in value.items()}
            return {k: v for k, v in out.items() if v is not None}
        if isinstance(value, list):
            return [v for v in (self.resolve(v) for v in value) if v is not None]
        if not isinstance(value, cfn.Tag):
            return value
        tag, arg = value.tag, value.value
        if tag == "!Ref":
            return self.ref(str(arg))
        if tag == "!GetAtt":
            logical, attr = arg.split(".", 1) if isinstance(arg, str) else (arg[0], arg[1])
            return self.get_att(logical, attr)
        if tag == "!Sub":
            template, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))
            return self._sub(str(template), {k: str(v) for k, v in variables.items()})
        if tag == "!Join":
            sep, items = arg
            return str(sep).join(str(x) for x in self.resolve(items))
        if tag == "!Select":
            index, items = arg
            return self.resolve(items)[int(self.resolve(index))]
        if tag == "!If":
            name, when_true, when_false = arg
            return self.resolve(when_true if self.condition(name) else when_false)
        if tag == "!Equals":
            left, right = (self.resolve(x) for x in arg)
            return str(left) == str(right)
        if tag == "!Not":
            return not self.resolve(arg[0])
        if tag == "!And":
            return all(self.resolve(x) for x in arg)
        if tag == "!Or":
            return any(self.resolve(x) for x in arg)
        if tag == "!Condition":
            return self.condition(str(arg))
        raise LocalAwsError(f"{tag} is not supported by the local stack")

    def _sub(self, template: str, variables: Mapping[str, str]) -> str:
        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return variables[name]
            if "." in name and name.split(".", 1)[0] in self.attrs:
                return self.get_att(*name.split(".", 1))
            resolved = self.ref(name)
            return "" if resolved is None else resolved

        return _SUB.sub(one, template)

    # ---- environments

    def function_environment(self, fn: cfn.FunctionDef) -> dict[str, str]:
        """What `fn`'s Lambda environment would hold: Globals + its own variables, resolved."""
        env: dict[str, str] = {}
        for key, raw in fn.environment.items():
            value = self.resolve(raw)
            if value is None:
                continue
            env[key] = _env_str(value)
        return env


def _env_str(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def merged_environment(resources: LocalResources) -> tuple[dict[str, str], list[str]]:
    """One environment for every function (they share one process locally) and the conflicts:
    variables that two functions set to different values (the first function's value is kept)."""
    merged: dict[str, str] = {}
    owner: dict[str, str] = {}
    conflicts: list[str] = []
    for logical_id, fn in sorted(cfn.functions().items()):
        for key, value in resources.function_environment(fn).items():
            if key in merged and merged[key] != value:
                conflicts.append(f"{key}: {owner[key]}={merged[key]!r}, {logical_id}={value!r}")
                continue
            merged.setdefault(key, value)
            owner.setdefault(key, logical_id)
    return merged, conflicts


# --------------------------------------------------------------------------------------- creation


def _physical_names(stack: str, region: str, account: str, parameters: dict[str, str]) -> LocalResources:
    """Every resource's Ref and attributes that do not depend on creating it (secrets' ARNs do)."""
    res = LocalResources(stack, region, account, "", dict(parameters))
    template = cfn.load_template()

    def name_prop(props: dict[str, Any], key: str, default: str) -> str:
        value = props.get(key)
        return str(res.resolve(value)) if value is not None else default

    # Names may refer to parameters and pseudo parameters only (as in the template today); resources
    # are named in template order so a later one may use an earlier one's Ref.
    for logical, resource in (template.get("Resources") or {}).items():
        kind = resource.get("Type", "")
        props = resource.get("Properties") or {}
        res.types[logical] = kind
        default = f"{stack}-{logical}"
        if kind == "AWS::DynamoDB::Table":
            name = name_prop(props, "TableName", default)
            arn = f"arn:aws:dynamodb:{region}:{account}:table/{name}"
            res.refs[logical] = name
            res.attrs[logical] = {"Arn": arn, "StreamArn": f"{arn}/stream/local"}
        elif kind == "AWS::SQS::Queue":
            fifo = bool(res.resolve(props.get("FifoQueue", False)))
            name = name_prop(props, "QueueName", default + (".fifo" if fifo else ""))
            res.refs[logical] = ""  # the URL, once created
            res.attrs[logical] = {"Arn": f"arn:aws:sqs:{region}:{account}:{name}", "QueueName": name}
        elif kind == "AWS::Scheduler::ScheduleGroup":
            name = name_prop(props, "Name", default)
            res.refs[logical] = name
            res.attrs[logical] = {"Arn": f"arn:aws:scheduler:{region}:{account}:schedule-group/{name}"}
        elif kind == "AWS::SecretsManager::Secret":
            name = name_prop(props, "Name", default)
            res.refs[logical] = name  # becomes the ARN once created
            res.attrs[logical] = {"Id": name}
        elif kind == "AWS::Events::EventBus":
            name = name_prop(props, "Name", default)
            res.refs[logical] = name
            res.attrs[logical] = {"Arn": f"arn:aws:events:{region}:{account}:event-bus/{name}", "Name": name}
        elif kind == "AWS::SNS::Topic":
            name = name_prop(props, "TopicName", default)
            arn = f"arn:aws:sns:{region}:{account}:{name}"
            res.refs[logical] = arn
            res.attrs[logical] = {"TopicArn": arn, "TopicName": name}
        elif kind == "AWS::IAM::Role":
            name = name_prop(props, "RoleName", default)
            res.refs[logical] = name
            res.attrs[logical] = {"Arn": f"arn:aws:iam::{account}:role/{name}", "RoleId": f"AROALOCAL{logical.upper()}"}
        elif kind == "AWS::Serverless::Function":
            name = name_prop(props, "FunctionName", default)
            res.refs[logical] = name
            res.attrs[logical] = {"Arn": f"arn:aws:lambda:{region}:{account}:function:{name}"}
        elif kind == "AWS::Serverless::Api":
            res.refs[logical] = "local"
            res.attrs[logical] = {"RootResourceId": "local-root"}
        else:
            res.refs[logical] = default
            res.attrs[logical] = {"Arn": f"arn:aws:local:{region}:{account}:{logical}"}
    # SAM's implicit resources that outputs and policies may name.
    for logical in list(res.types):
        if res.types[logical] == "AWS::Serverless::Api":
            res.refs.setdefault(f"{logical}ApiKey", "local-api-key")
            res.types.setdefault(f"{logical}ApiKey", "AWS::ApiGateway::ApiKey")
    return res


def template_parameters(overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """The template's parameters at their defaults, then `overrides` (as sam's --parameter-overrides)."""
    declared = cfn.load_template().get("Parameters") or {}
    params = {name: _env_str(spec["Default"]) for name, spec in declared.items() if "Default" in spec}
    for name, value in (overrides or {}).items():
        if name not in declared:
            raise LocalAwsError(f"parameter override {name!r}: the template declares no such parameter")
        params[name] = str(value)
    missing = sorted(set(declared) - set(params))
    if missing:
        raise LocalAwsError(f"parameters without a default need a value: {missing}")
    return params


def parse_parameter_overrides(raw: str) -> dict[str, str]:
    """``Key=Value Key2=Value2`` (as ``sam deploy --parameter-overrides``), quoted as a shell quotes
    a value with a space: ``'LogPollSchedule=rate(1 minute)'`` or ``LogPollSchedule="rate(1 minute)"``."""
    out = {}
    try:
        parts = shlex.split(raw)
    except ValueError as exc:
        raise LocalAwsError(f"parameter overrides {raw!r}: {exc}") from exc
    for part in parts:
        key, sep, value = part.partition("=")
        if not sep:
            raise LocalAwsError(f"parameter override {part!r} is not Key=Value")
        out[key] = value
    return out


_sessions: dict[str, Any] = {}
_sessions_lock = threading.Lock()


def client(service: str, endpoint: str, region: str = DEFAULT_REGION) -> Any:
    """A boto3 client for the local AWS at `endpoint` (one shared session: models load once)."""
    import boto3

    with _sessions_lock:  # creating clients from one session is not thread-safe
        session = _sessions.get(region)
        if session is None:
            session = _sessions[region] = boto3.session.Session(
                aws_access_key_id=LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                aws_session_token=LOCAL_CREDENTIALS["AWS_SESSION_TOKEN"],
                region_name=region,
            )
        make: Any = session.client
        return make(service, endpoint_url=endpoint)


_QUEUE_ATTRIBUTES = (
    "DelaySeconds",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout",
    "FifoQueue",
    "ContentBasedDeduplication",
    "SqsManagedSseEnabled",
)


def create_resources(
    endpoint: str,
    *,
    nuki_token: str,
    stack_name: str = DEFAULT_STACK_NAME,
    region: str = DEFAULT_REGION,
    parameters: Mapping[str, str] | None = None,
) -> LocalResources:
    """Create what the template declares on the moto server at `endpoint`."""
    res = _physical_names(stack_name, region, ACCOUNT_ID, template_parameters(parameters))
    res.endpoint = endpoint
    template = cfn.load_template()["Resources"]

    # Queues first (everything else may point at them), redrive policies once all exist.
    sqs = client("sqs", endpoint, region)
    redrives: dict[str, dict[str, Any]] = {}
    for logical in res.queue_urls:
        props = template[logical].get("Properties") or {}
        attributes = {key: _env_str(res.resolve(props[key])) for key in _QUEUE_ATTRIBUTES if key in props}
        url = sqs.create_queue(QueueName=res.attrs[logical]["QueueName"], Attributes=attributes)["QueueUrl"]
        res.refs[logical] = url
        res.attrs[logical]["QueueUrl"] = url
        if "RedrivePolicy" in props:
            redrives[url] = res.resolve(props["RedrivePolicy"])
    for url, policy in redrives.items():
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"RedrivePolicy": json.dumps(policy)})

    ddb = client("dynamodb", endpoint, region)
    for logical, name in res.of_type("AWS::DynamoDB::Table").items():
        definition = cfn.table_definition(logical)
        created = ddb.create_table(TableName=name, **res.resolve(definition))["TableDescription"]
        if created.get("LatestStreamArn"):
            res.attrs[logical]["StreamArn"] = created["LatestStreamArn"]
        ttl = cfn.ttl_attribute(logical)
        if ttl:
            ddb.update_time_to_live(TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl})

    scheduler = client("scheduler", endpoint, region)
    for group in res.schedule_groups:
        scheduler.create_schedule_group(Name=group)

    events = client("events", endpoint, region)
    for name in res.of_type("AWS::Events::EventBus").values():
        events.create_event_bus(Name=name)

    sns = client("sns", endpoint, region)
    for logical in res.of_type("AWS::SNS::Topic"):
        arn = sns.create_topic(Name=res.attrs[logical]["TopicName"])["TopicArn"]
        res.refs[logical] = res.attrs[logical]["TopicArn"] = arn

    sm = client("secretsmanager", endpoint, region)
    token_secrets = secrets_named_by(TOKEN_SECRET_VARIABLE)
    for logical, name in res.of_type("AWS::SecretsManager::Secret").items():
        props = template[logical].get("Properties") or {}
        # The Nuki token goes into the secret the functions read it from; any other secret gets a
        # random value, as GenerateSecretString would (the webhook secret until registration).
        value = nuki_token if logical in token_secrets else secrets.token_hex(16)
        if "SecretString" in props:
            value = str(res.resolve(props["SecretString"]))
        arn = sm.create_secret(Name=name, SecretString=value)["ARN"]
        res.refs[logical] = arn
        res.attrs[logical]["Id"] = arn

    # Cognito user pools and their app clients (the console's sign-in): moto issues real signed
    # tokens and serves the pool's keys at /<pool id>/.well-known/jwks.json.
    cognito = client("cognito-idp", endpoint, region)
    for logical in res.of_type("AWS::Cognito::UserPool"):
        props = res.resolve(template[logical].get("Properties") or {})
        kwargs: dict[str, Any] = {"PoolName": props.get("UserPoolName", f"{stack_name}-{logical}")}
        for key in ("Policies", "AdminCreateUserConfig", "UsernameAttributes", "AutoVerifiedAttributes"):
            if key in props:
                kwargs[key] = props[key]
        pool = cognito.create_user_pool(**kwargs)["UserPool"]
        res.refs[logical] = pool["Id"]
        res.attrs[logical] = {"Arn": pool["Arn"], "ProviderName": f"cognito-idp.{region}.amazonaws.com/{pool['Id']}"}
    for logical in res.of_type("AWS::Cognito::UserPoolClient"):
        props = res.resolve(template[logical].get("Properties") or {})
        kwargs = {
            key: props[key]
            for key in (
                "UserPoolId",
                "ClientName",
                "GenerateSecret",
                "ExplicitAuthFlows",
                "IdTokenValidity",
                "AccessTokenValidity",
                "RefreshTokenValidity",
                "TokenValidityUnits",
                "PreventUserExistenceErrors",
            )
            if key in props
        }
        created = cognito.create_user_pool_client(**kwargs)["UserPoolClient"]
        res.refs[logical] = created["ClientId"]
        res.attrs[logical] = {"ClientSecret": created.get("ClientSecret", "")}

    sender = res.parameters.get("SenderEmail")
    if sender:
        client("ses", endpoint, region).verify_email_identity(EmailAddress=parseaddr(sender)[1] or sender)
    return res


def create_operator(endpoint: str, pool_id: str, username: str, password: str, region: str = DEFAULT_REGION) -> None:
    """An operator of the console, as an admin creates one (here with a permanent password)."""
    cognito = client("cognito-idp", endpoint, region)
    cognito.admin_create_user(
        UserPoolId=pool_id,
        Username=username,
        UserAttributes=[{"Name": "email", "Value": username}, {"Name": "email_verified", "Value": "true"}],
        MessageAction="SUPPRESS",
    )
    cognito.admin_set_user_password(UserPoolId=pool_id, Username=username, Password=password, Permanent=True)


TOKEN_SECRET_VARIABLE = "NUKI_TOKEN_SECRET_NAME"  # noqa: S105 - a variable name, not a secret


def secrets_named_by(variable: str) -> set[str]:
    """Logical ids of the secrets a function environment variable refers to (``!Ref Secret``)."""
    found = set()
    for fn in cfn.functions().values():
        value = fn.environment.get(variable)
        if value is not None and _is_tag(value, "!Ref"):
            found.add(str(value.value))
    return found


def local_aws_environment(endpoint: str, region: str = DEFAULT_REGION) -> dict[str, str]:
    """What a process needs to talk to the local AWS with boto3 (and Powertools)."""
    no_proxy = ",".join(x for x in ("127.0.0.1", "localhost", "::1", os.environ.get("NO_PROXY", "")) if x)
    return {
        **LOCAL_CREDENTIALS,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        "NO_PROXY": no_proxy,
        "no_proxy": no_proxy,
    }
