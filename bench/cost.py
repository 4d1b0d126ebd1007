"""7. AWS cost per 1,000 bookings, from what the stack runs measured (`bench.stack_runs`' probe:
every invocation with its duration, AWS calls, DynamoDB units, log bytes, Nuki calls) and the
reconcile run (`bench.reconcile_scale`), at AWS's public on-demand prices for eu-central-1.

Prices are the ones I know from AWS's public price pages as of 2025 (DynamoDB on-demand after the
50 % cut of November 2024); they were not re-checked for this run (no internet here): check them
at https://aws.amazon.com/pricing before relying on them. Free tiers are left out.

Lambda duration is modelled, not measured on Lambda: the handler's CPU time measured here, scaled
to the CPU share of a 256 MB function (Lambda gives 1,769 MB one vCPU), plus the time the handler
waited for AWS (moto here) as measured, plus `NUKI_LATENCY_S` per Nuki call (the sandbox answers
in microseconds; Nuki does not). Init (cold start) time is billed too since August 2025; it is not in
this per-booking figure (cold starts depend on traffic, not on bookings).
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

REGION = "eu-central-1"
PRICES_AS_OF = "2025 (AWS public price pages as known to the author; not re-checked on 2026-11-26)"
PRICES = {
    "lambda_request": 0.20 / 1e6,  # per request
    "lambda_gb_s_arm64": 0.0000133334,  # per GB-second, arm64
    "apigw_rest_request": 3.70 / 1e6,  # REST API, first 333 million a month, eu-central-1
    "dynamodb_wru": 0.7625 / 1e6,  # on-demand write request unit, eu-central-1
    "dynamodb_rru": 0.1525 / 1e6,  # on-demand read request unit, eu-central-1
    "sqs_request": 0.40 / 1e6,  # standard queue, per 64 KB chunk
    "ses_email": 0.10 / 1000,  # outbound email
    "scheduler_invocation": 1.00 / 1e6,  # EventBridge Scheduler, after 14 million free a month
    "logs_ingest_gb": 0.63,  # CloudWatch Logs standard ingestion, per GB
    "custom_metric_month": 0.30,  # CloudWatch custom metric, first 10,000 metrics
    "xray_trace": 5.00 / 1e6,  # X-Ray traces recorded
}
NUKI_LATENCY_S = 0.2  # assumed per Nuki Web API call, for the duration model
LAMBDA_FULL_CPU_MB = 1769
SCHEDULED_PER_BOOKING = 2  # the expire schedule at validUntil; the provision schedule (booked > 72 h ahead)
PER = 1000
RECONCILE_RUNS_PER_MONTH = 4 * 24 * 30  # rate(15 minutes)


def billed_ms(record: dict[str, Any]) -> float:
    memory = int(record.get("memory", 256))
    cpu, wall = float(record["cpu_ms"]), float(record["wall_ms"])
    waited = max(0.0, wall - cpu)
    return math.ceil(cpu * LAMBDA_FULL_CPU_MB / memory + waited + record.get("nuki", 0) * NUKI_LATENCY_S * 1000)


def per_booking(happy_path: dict[str, Any]) -> dict[str, Any]:
    bookings = happy_path["bookings"]
    invokes = [r for r in happy_path["probe"] if r["kind"] == "invoke"]
    pollers = [r for r in happy_path["probe"] if r["kind"] == "poller"]
    by_fn = Counter(r["fn"] for r in invokes)
    gb_s = sum(billed_ms(r) / 1000 * int(r.get("memory", 256)) / 1024 for r in invokes)
    sqs_in = sum(n for r in invokes for op, n in r["aws"].items() if op.startswith("sqs."))
    sqs_poll = len(pollers)  # non-empty receives and delete batches of the event-source mappings
    ses = sum(r["aws"].get("ses.SendEmail", 0) for r in invokes)
    shop_api = 3 * bookings  # POST /bookings, GET /bookings/{id}, POST .../checkout per stay
    webhooks = by_fn.get("NukiWebhookFunction", 0)
    return {
        "invocations": len(invokes) / bookings,
        "invocations_by_function": {k: v / bookings for k, v in sorted(by_fn.items())},
        "gb_seconds": gb_s / bookings,
        "billed_ms_median_by_function": {
            fn: sorted(billed_ms(r) for r in invokes if r["fn"] == fn)[by_fn[fn] // 2] for fn in sorted(by_fn)
        },
        "api_requests": (shop_api + webhooks) / bookings,
        "rru": sum(r["rru"] for r in invokes) / bookings,
        "wru": sum(r["wru"] for r in invokes) / bookings,
        "sqs_requests": (sqs_in + sqs_poll) / bookings,
        "ses_emails": ses / bookings,
        "log_bytes": sum(r["log_bytes"] for r in invokes) / bookings,
        "nuki_calls": sum(r.get("nuki", 0) for r in invokes) / bookings,
        "scheduled_invocations": SCHEDULED_PER_BOOKING,
    }


def price(usage: dict[str, Any]) -> dict[str, float]:
    """Dollars per PER bookings, by service."""
    p = PRICES
    lines = {
        "Lambda requests": usage["invocations"] * p["lambda_request"],
        "Lambda duration (arm64)": usage["gb_seconds"] * p["lambda_gb_s_arm64"],
        "API Gateway (REST)": usage["api_requests"] * p["apigw_rest_request"],
        "DynamoDB writes": usage["wru"] * p["dynamodb_wru"],
        "DynamoDB reads": usage["rru"] * p["dynamodb_rru"],
        "SQS": usage["sqs_requests"] * p["sqs_request"],
        "SES": usage["ses_emails"] * p["ses_email"],
        "EventBridge Scheduler": usage["scheduled_invocations"] * p["scheduler_invocation"],
        "CloudWatch Logs ingestion": usage["log_bytes"] / 1e9 * p["logs_ingest_gb"],
        "X-Ray traces (every invocation traced)": usage["invocations"] * p["xray_trace"],
    }
    out = {k: round(v * PER, 4) for k, v in lines.items()}
    out["total"] = round(sum(lines.values()) * PER, 4)
    return out


def fixed_per_lock_month(reconcile: dict[str, Any]) -> dict[str, float]:
    """What 1,000 locks cost a month whatever the bookings: the 15-minute reconcile."""
    p = PRICES
    locks = 1000
    runs = RECONCILE_RUNS_PER_MONTH
    seconds_per_lock = float(reconcile["lambda_model_s_per_lock"])
    lines = {
        "reconcile: Lambda duration": locks * runs * seconds_per_lock * 256 / 1024 * p["lambda_gb_s_arm64"],
        "reconcile: Lambda requests": locks / 5 * runs * p["lambda_request"],  # batches of 5 locks
        "reconcile: DynamoDB reads": locks * runs * float(reconcile["dynamodb_rru_per_lock"]) * p["dynamodb_rru"],
        "reconcile: DynamoDB writes": locks * runs * float(reconcile["dynamodb_wru_per_lock"]) * p["dynamodb_wru"],
        "reconcile: SQS": locks * runs * 0.5 * p["sqs_request"],  # send (10 a batch), receive and delete (5 a batch)
        "KeypadCodes metric per smartlockId (one custom metric per lock)": locks * p["custom_metric_month"],
    }
    return {k: round(v, 2) for k, v in lines.items()}
