"""入学信息核验 from Python: the education bureau's enrollment check through
the popbase gateway, with stubs generated from proto/ alone (run.sh does that).

    python enrollment_check.py --gateway 127.0.0.1:50051 --token "$(popbase token --department education)" \
        --child 370303201801010011 --guardian 370303198801010012 --district 370303001001

Without --child, the script picks a demo family from the registry as the
public-security bureau sees it (an identified persons export through the
gateway, with --police-token): a demo convenience only; the education bureau
itself is never approved for that export.
"""

import argparse
import datetime
import sys

import grpc

from gateway_channel import gateway_channel, token_metadata
from popbase.gateway.v1 import enrollment_pb2, enrollment_pb2_grpc


def pick_family(gateway, police_token):
    """A child of school age (6-15) whose registry record names a father, in the demo city."""
    import json
    import pyarrow.flight as flight
    client = flight.FlightClient(f"grpc+tcp://{gateway}")
    options = flight.FlightCallOptions(headers=[(b"authorization", f"Bearer {police_token}".encode())])
    ticket = {"dataset": "persons", "purpose": "REGISTRY_RECONCILIATION",
              "columns": ["id_number", "father_id_number", "birth_date", "committee_code", "status"]}
    persons = client.do_get(flight.Ticket(json.dumps(ticket).encode()), options).read_all().to_pylist()
    today = datetime.date.today()
    for person in persons:
        age = today.year - person["birth_date"].year
        if person["status"] == "active" and 6 <= age <= 15 and person["father_id_number"]:
            return person["id_number"], person["father_id_number"], person["committee_code"]
    raise SystemExit("no school-age child with a recorded father in the demo city")


def bulk_intake(enrollment, metadata, request, count):
    """A city school's intake: `count` applications on one stream, each sent
    as grpcio sends it (one small HTTP/2 frame per message); every answer
    must come back, in order."""
    def applications():
        for i in range(count):
            item = enrollment_pb2.EnrollmentCheckRequest()
            item.CopyFrom(request)
            item.request_id = f"bulk-{i}"
            yield item
    started = datetime.datetime.now()
    expected = 0
    for item in enrollment.CheckIntake(applications(), metadata=metadata):
        if item.request_id != f"bulk-{expected}" or item.HasField("error"):
            raise SystemExit(f"bulk intake: answer {expected} was {item.request_id} {item.error}")
        expected += 1
    if expected != count:
        raise SystemExit(f"bulk intake: {expected} of {count} answered")
    seconds = (datetime.datetime.now() - started).total_seconds()
    print(f"bulk intake: {count} answered in order in {seconds:.1f} s")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gateway", default="127.0.0.1:50051")
    parser.add_argument("--token", required=True, help="department token (popbase token --department education)")
    parser.add_argument("--ca", help="PEM CA of the gateway's certificate (TLS); omit for the plaintext demo")
    parser.add_argument("--child")
    parser.add_argument("--guardian", action="append", default=[])
    parser.add_argument("--district", action="append", default=[])
    parser.add_argument("--police-token", help="demo only: a public_security token, to find a family")
    parser.add_argument("--intake", type=int, default=0,
                        help="also send a school's whole intake: this many applications on one stream")
    args = parser.parse_args()

    if args.child:
        child, guardians, districts = args.child, args.guardian, args.district
    else:
        if not args.police_token:
            raise SystemExit("name --child (and --guardian, --district), or give --police-token to pick a demo family")
        child, father, committee = pick_family(args.gateway, args.police_token)
        guardians, districts = [father], [committee]

    channel = gateway_channel(args.gateway, args.ca)
    metadata = token_metadata(args.token)
    enrollment = enrollment_pb2_grpc.EnrollmentStub(channel)

    request = enrollment_pb2.EnrollmentCheckRequest(
        purpose="COMPULSORY_EDUCATION_ENROLLMENT", request_id="py-1",
        child_id_number=child, guardian_id_numbers=guardians, district_codes=districts)
    answer = enrollment.Check(request, metadata=metadata)
    c = answer.child
    print(f"child {c.masked_id_number}: {enrollment_pb2.PlaceKind.Name(c.kind)} "
          f"{c.place.county_name}{c.place.street_name}{c.place.committee_name} in_district={c.in_district}")
    for g in answer.guardians:
        print(f"guardian {g.masked_id_number}: {enrollment_pb2.GuardianRelation.Name(g.relation)} "
              f"{enrollment_pb2.PlaceKind.Name(g.kind)} in_district={g.in_district}")
    print(f"basis: {enrollment_pb2.EnrollmentBasis.Name(answer.basis)} {answer.basis_text}")

    # A whole intake over the bidirectional stream: the same child twice and a malformed item.
    items = [request, enrollment_pb2.EnrollmentCheckRequest(
        purpose="COMPULSORY_EDUCATION_ENROLLMENT", request_id="py-bad", child_id_number="123",
        guardian_id_numbers=guardians, district_codes=districts), request]
    for item in enrollment.CheckIntake(iter(items), metadata=metadata):
        if item.HasField("error"):
            print(f"intake {item.request_id}: refused {item.error.field}: {item.error.reason}")
        else:
            print(f"intake {item.request_id}: {enrollment_pb2.EnrollmentBasis.Name(item.basis)}")

    if args.intake:
        bulk_intake(enrollment, metadata, request, args.intake)

    # Without a purpose the gateway answers INVALID_ARGUMENT naming the field.
    try:
        enrollment.Check(enrollment_pb2.EnrollmentCheckRequest(child_id_number=child), metadata=metadata)
    except grpc.RpcError as e:
        print(f"no purpose: {e.code().name} {e.details()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
