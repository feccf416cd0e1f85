"""养老金领取人员死亡通知 from Python: the pension fund (人社局, department
`hrss`) subscribes to the deaths of exactly its pensioners through the
popbase gateway (Subscriptions), with stubs generated from proto/ alone
(run.sh does that).

    python subscribe_roster.py --gateway 127.0.0.1:50051 --token "$(popbase token --department hrss)" \
        --police-token "$(popbase token --department public_security)"

It uploads a roster of pensioners (ID numbers; the platform keeps only
keyed pseudonyms), then, as the demo's household office (--police-token),
registers some deaths on the roster and some off it. It reads one
notification at a time, acknowledges the first, drops the connection,
registers more deaths while it is away, and resumes: every death on the
roster must arrive (the unacknowledged one again: at least once), none
off it.
"""

import argparse
import datetime
import json
import sys
import time
from zoneinfo import ZoneInfo

import grpc

from gateway_channel import gateway_channel, token_metadata
from popbase.common.v1 import common_pb2
from popbase.gateway.v1 import subscriptions_pb2, subscriptions_pb2_grpc, writes_pb2, writes_pb2_grpc
from popbase.household.v1 import events_pb2

CITY_TZ = ZoneInfo("Asia/Shanghai")


def pick_people(gateway, police_token, count):
    """Active residents aged 60 or more in the demo city (a demo convenience:
    a pension fund has its own roster)."""
    import pyarrow.flight as flight
    client = flight.FlightClient(f"grpc+tcp://{gateway}")
    options = flight.FlightCallOptions(headers=[(b"authorization", f"Bearer {police_token}".encode())])
    ticket = {"dataset": "persons", "purpose": "REGISTRY_RECONCILIATION", "columns": ["id_number", "birth_date", "status"]}
    persons = client.do_get(flight.Ticket(json.dumps(ticket).encode()), options).read_all().to_pylist()
    year = datetime.datetime.now(CITY_TZ).year
    old = [p["id_number"] for p in persons if p["status"] == "active" and year - p["birth_date"].year >= 60]
    if len(old) < count:
        raise SystemExit(f"the demo city has only {len(old)} active residents aged 60 or more")
    return old[:count]


def register_death(events, police, id_number, n):
    today = datetime.datetime.now(CITY_TZ).date()
    death = events_pb2.RegisterDeathRequest(
        context=events_pb2.EventContext(
            actor="ignored", occurred_on=common_pb2.Date(year=today.year, month=today.month, day=today.day)),
        id_number=id_number, death_certificate_number=f"D3703{n:014d}")
    events.Submit(writes_pb2.LifeEventSubmission(purpose="HOUSEHOLD_REGISTRATION", officer_id="police-370302-01", death=death),
                  metadata=police)


def read_until(stream, want, seconds):
    """Changes from `stream` until every id in `want` has come or time is up;
    the ids seen and the last position."""
    seen, position = [], None
    deadline = time.monotonic() + seconds
    for notification in stream:
        seen.extend(c.id_number for c in notification.changes)
        position = notification.position
        if want <= set(seen) or time.monotonic() > deadline:
            break
    return seen, position


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gateway", default="127.0.0.1:50051")
    parser.add_argument("--token", required=True, help="an hrss token (popbase token --department hrss)")
    parser.add_argument("--police-token", required=True, help="demo only: a public_security token, to register deaths")
    parser.add_argument("--ca", help="CA of the gateway's certificate (TLS); plaintext without")
    parser.add_argument("--roster", type=int, default=200)
    args = parser.parse_args()

    people = pick_people(args.gateway, args.police_token, args.roster + 2)
    roster, outsiders = people[:args.roster], people[args.roster:]
    channel = gateway_channel(args.gateway, args.ca)
    subscriptions = subscriptions_pb2_grpc.SubscriptionsStub(channel)
    events = writes_pb2_grpc.RegistryEventsStub(channel)
    hrss, police = token_metadata(args.token), token_metadata(args.police_token)

    created = subscriptions.CreateSubscription(subscriptions_pb2.CreateSubscriptionRequest(
        purpose="PENSION_ELIGIBILITY", kinds=[subscriptions_pb2.CHANGE_KIND_DEATH], roster=True,
        fields=["id_number", "occurred_on"]), metadata=hrss)
    sub_id = created.subscription_id
    stored = subscriptions.UpdateRoster(subscriptions_pb2.UpdateRosterRequest(
        subscription_id=sub_id, add_id_numbers=roster), metadata=hrss)
    print(f"roster: {stored.roster_size} pensioners")

    # Unapproved fields are refused, with the reason code in the trailers.
    try:
        subscriptions.CreateSubscription(subscriptions_pb2.CreateSubscriptionRequest(
            purpose="PENSION_ELIGIBILITY", kinds=[subscriptions_pb2.CHANGE_KIND_DEATH], roster=True,
            fields=["household_id"]), metadata=hrss)
        raise SystemExit("an unapproved field was accepted")
    except grpc.RpcError as e:
        reason = dict(e.trailing_metadata() or ()).get("popbase-reason", "")
        print(f"unapproved field: {e.code().name} {reason}")

    died = roster[:5]
    for n, person in enumerate(died + outsiders):
        register_death(events, police, person, n)

    # One change per notification: acknowledge the first, then hang up.
    stream = subscriptions.Subscribe(subscriptions_pb2.SubscribeRequest(subscription_id=sub_id, max_batch=1), metadata=hrss)
    first = next(stream)
    second = next(stream)
    subscriptions.Acknowledge(subscriptions_pb2.AcknowledgeRequest(subscription_id=sub_id, position=first.position),
                              metadata=hrss)
    stream.cancel()

    # Two more die while the pension fund is away.
    later = roster[5:7]
    for n, person in enumerate(later, start=100):
        register_death(events, police, person, n)
    expected = set(died + later)
    resumed = subscriptions.Subscribe(subscriptions_pb2.SubscribeRequest(subscription_id=sub_id), metadata=hrss)
    seen, position = read_until(resumed, expected - {first.changes[0].id_number}, 20)
    resumed.cancel()
    subscriptions.Acknowledge(subscriptions_pb2.AcknowledgeRequest(subscription_id=sub_id, position=position), metadata=hrss)

    told = [first.changes[0].id_number] + seen
    missing = expected - set(told)
    outside = set(told) - set(roster)
    again = second.changes[0].id_number in seen
    print(f"subscription: deaths={len(expected)} delivered={len(set(told))} missing={len(missing)} "
          f"outside_roster={len(outside)} unacknowledged_again={again}")
    if missing or outside or not again:
        sys.exit(1)
    acked = subscriptions.GetSubscription(subscriptions_pb2.GetSubscriptionRequest(subscription_id=sub_id), metadata=hrss)
    print(f"acknowledged household position: {acked.acknowledged.household}")


if __name__ == "__main__":
    main()
