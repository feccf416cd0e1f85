"""医保参保数据汇聚 from Python: the medical-insurance bureau sends its records
into the population base through the popbase gateway (DepartmentFeeds.Submit),
with stubs generated from proto/ alone (run.sh does that).

    python feed_upload.py --gateway 127.0.0.1:50051 --token "$(popbase token --department medical_insurance)"

It streams --records insurance records (persons with valid GB 11643 ID
numbers; those the city does not know come back UNMATCHED, kept for when
they arrive), sends the same records again (all DUPLICATE: ingest is
idempotent), then tries a pension record, which the catalogue does not
approve for this bureau (PERMISSION_DENIED, KIND_NOT_APPROVED).
"""

import argparse
import sys
import time

import grpc

from gateway_channel import gateway_channel, token_metadata
from popbase.feeds.v1 import records_pb2
from popbase.gateway.v1 import writes_pb2, writes_pb2_grpc

WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
CHECK = "10X98765432"
PER_MESSAGE = 256  # the gateway takes up to 1,024 records per message


def id_number(county, birth, sequence):
    """A valid 18-digit ID number (GB 11643): county, birth date, sequence, check digit."""
    body = f"{county}{birth}{sequence:03d}"
    return body + CHECK[sum(int(d) * w for d, w in zip(body, WEIGHTS)) % 11]


def insurance_records(count, as_of):
    for i in range(count):
        person = id_number("370303", f"19{60 + i % 40:02d}0{1 + i % 9}1{i % 9}", i % 1000)
        yield records_pb2.FeedRecord(
            source=records_pb2.SOURCE_MEDICAL_INSURANCE, record_id=f"PY-MI-{i:07d}", as_of_unix_millis=as_of,
            medical_insurance=records_pb2.MedicalInsurance(
                id_number=person, scheme=records_pb2.MEDICAL_SCHEME_URBAN_RURAL_RESIDENT,
                status=records_pb2.ENROLLMENT_STATUS_ACTIVE, insured_county_code="370303"))


def messages(records, officer):
    """The submission: purpose and officer in the first message, records in batches."""
    batch = []
    first = True
    for record in records:
        batch.append(record)
        if len(batch) == PER_MESSAGE:
            yield submission(batch, officer, first)
            batch, first = [], False
    if batch or first:
        yield submission(batch, officer, first)


def submission(batch, officer, first):
    if first:
        return writes_pb2.FeedSubmission(purpose="DEPARTMENT_FEED", officer_id=officer, records=batch)
    return writes_pb2.FeedSubmission(records=batch)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gateway", default="127.0.0.1:50051")
    parser.add_argument("--token", required=True, help="department token (popbase token --department medical_insurance)")
    parser.add_argument("--ca", help="PEM CA of the gateway's certificate (TLS); omit for the plaintext demo")
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--officer", default="mi-operator-01")
    args = parser.parse_args()

    channel = gateway_channel(args.gateway, args.ca)
    metadata = token_metadata(args.token)
    feeds = writes_pb2_grpc.DepartmentFeedsStub(channel)
    as_of = int(time.time() * 1000) - 60_000

    started = time.monotonic()
    summary = feeds.Submit(messages(insurance_records(args.records, as_of), args.officer), metadata=metadata)
    seconds = time.monotonic() - started
    print(f"feed: received={summary.received} accepted={summary.accepted} unmatched={summary.unmatched} "
          f"duplicates={summary.duplicates} rejected={summary.rejected} ({summary.received / seconds:.0f} records/s)")
    again = feeds.Submit(messages(insurance_records(args.records, as_of), args.officer), metadata=metadata)
    print(f"again: received={again.received} duplicates={again.duplicates}")

    pension = records_pb2.FeedRecord(
        source=records_pb2.SOURCE_HUMAN_RESOURCES, record_id="PY-PEN-1", as_of_unix_millis=as_of,
        pension=records_pb2.Pension(id_number=id_number("370303", "19700101", 1),
                                    scheme=records_pb2.PENSION_SCHEME_ENTERPRISE_EMPLOYEE,
                                    status=records_pb2.ENROLLMENT_STATUS_ACTIVE))
    try:
        feeds.Submit(messages([pension], args.officer), metadata=metadata)
        print("pension: accepted (unexpected)")
    except grpc.RpcError as e:
        reason = dict(e.trailing_metadata() or ()).get("popbase-reason", "")
        print(f"pension: {e.code().name} {reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
