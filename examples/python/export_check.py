"""Bulk export for the big-data bureau, from Python: pyarrow.flight against
the popbase gateway, then DuckDB over the Parquet files `popbase export`
wrote. Used by check.sh against `popbase demo`; every assert is what a
bureau analyst would rely on.

    python export_check.py --gateway 127.0.0.1:50060 --token "$(popbase token --department big_data)" \
        --parquet-dir exports/ [--police-token "$(popbase token --department public_security)"]

With --police-token, the script also makes one registry change as the
public-security household office would (a household's address, submitted
through the gateway's RegistryEvents) and checks that an incremental export
returns exactly the changed rows.
"""

import argparse
import datetime
import json
import os

import duckdb
import pyarrow
import pyarrow.flight as flight
import pyarrow.ipc

DATASETS = {"persons", "households", "changes", "statistics", "standard_addresses", "residence_permits",
            "medical_insurance", "pensions", "education", "marriage", "housing"}
PERSONAL = {"id_number", "name", "phone", "address_detail", "birth_date", "father_id_number",
            "mother_id_number", "permit_number", "certificate_number", "party_a_id_number"}
SEQ = b"popbase.snapshot_seq"


def ticket(dataset, **filters):
    return flight.Ticket(json.dumps({"dataset": dataset, "purpose": "POPULATION_ANALYSIS", **filters}).encode())


def read(client, options, dataset, **filters):
    return client.do_get(ticket(dataset, **filters), options).read_all()


def change_an_address(gateway, police_token, persons, statistics):
    """Moves one family household to another committee of its county, as the
    household office through the gateway; returns (household_id, number of
    its active members)."""
    import grpc
    from popbase.common.v1 import common_pb2
    from popbase.gateway.v1 import writes_pb2, writes_pb2_grpc
    from popbase.household.v1 import events_pb2

    rows = persons.select(["household_id", "committee_code", "status"]).to_pylist()
    committees = statistics.column("committee_code").to_pylist()
    members = {}
    for row in rows:
        if row["status"] == "active":
            members.setdefault(row["household_id"], []).append(row["committee_code"])
    for household_id, codes in sorted(members.items()):
        here = codes[0]
        there = next((c for c in committees if c[:6] == here[:6] and c != here), None)
        if there and len(codes) >= 2:
            break
    else:
        raise SystemExit("no household with two members and a neighbouring committee")
    with grpc.insecure_channel(gateway) as channel:
        today = datetime.date.today()
        change = events_pb2.ChangeAddressRequest(
            context=events_pb2.EventContext(occurred_on=common_pb2.Date(year=today.year, month=today.month, day=today.day)),
            household_id=household_id,
            address=common_pb2.Address(committee_code=there, detail="导出检查路1号"))
        receipt = writes_pb2_grpc.RegistryEventsStub(channel).Submit(
            writes_pb2.LifeEventSubmission(purpose="HOUSEHOLD_REGISTRATION", officer_id="export-check",
                                           change_address=change),
            metadata=[("authorization", f"Bearer {police_token}")])
        assert receipt.event.actor == "public_security:export-check", receipt.event.actor
    return household_id, len(members[household_id])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gateway", required=True, help="host:port of the gateway (plaintext demo)")
    parser.add_argument("--token", required=True, help="a big_data department token")
    parser.add_argument("--parquet-dir", help="directory with persons.parquet and medical_insurance.parquet")
    parser.add_argument("--police-token", help="a public_security token: change an address through the gateway (incremental check)")
    args = parser.parse_args()

    client = flight.FlightClient(f"grpc+tcp://{args.gateway}")
    options = flight.FlightCallOptions(headers=[(b"authorization", f"Bearer {args.token}".encode())])

    infos = {info.descriptor.path[0].decode(): info for info in client.list_flights(options=options)}
    assert set(infos) == DATASETS, f"listed {sorted(infos)}"
    counts = {}
    for name, info in sorted(infos.items()):
        table = client.do_get(info.endpoints[0].ticket, options).read_all()
        assert table.schema.remove_metadata().equals(info.schema.remove_metadata()), f"{name}: schema differs from the listing"
        leaked = PERSONAL & set(table.schema.names)
        assert not leaked, f"{name} carries {leaked}"
        assert table.schema.metadata[b"popbase.deidentification"] == b"pseudonymised"
        counts[name] = table.num_rows
        print(f"flight {name}: {table.num_rows} rows, {len(table.schema)} columns")
    assert counts["persons"] > 0 and counts["households"] > 0 and counts["medical_insurance"] > 0

    persons = read(client, options, "persons")
    again = read(client, options, "persons")
    ids = persons.column("id_pseudonym").to_pylist()
    assert ids == again.column("id_pseudonym").to_pylist(), "pseudonyms are stable across exports"
    assert all(len(p) == 32 for p in ids) and len(set(ids)) == len(ids)
    assert all(len(m) == 7 for m in persons.column("birth_month").to_pylist() if m)
    print(f"pseudonyms: stable, unique, {len(ids)} persons")

    # Enum labels arrive as dictionaries of their whole label set, listed
    # in the field's metadata (pandas would see a categorical).
    status = persons.schema.field("status")
    assert pyarrow.types.is_dictionary(status.type) and status.type.index_type == pyarrow.int16(), status.type
    listed = status.metadata[b"popbase.labels"].decode().split(",")
    assert {"active", "moved_out", "deceased"} <= set(listed), listed
    chunk = persons.column("status").chunk(0)
    assert chunk.dictionary.to_pylist() == listed, "every batch carries the whole set"
    statuses = persons.column("status").to_pylist()
    assert None not in statuses and "active" in statuses, "every person has a status, most are active"
    assert pyarrow.types.is_dictionary(persons.schema.field("sex").type), "every enum column, not only status"
    print(f"labels: status as a dictionary of {listed}")

    narrow = read(client, options, "persons", columns=["id_number", "sex", "birth_date"])
    assert narrow.schema.names == ["id_pseudonym", "sex", "birth_month"], narrow.schema.names
    assert narrow.column("sex").to_pylist() == persons.column("sex").to_pylist()
    try:
        read(client, options, "persons", columns=["name"])
        raise AssertionError("a dropped column was released")
    except pyarrow.ArrowInvalid as e:  # how pyarrow raises gRPC's INVALID_ARGUMENT
        assert "ticket.columns" in str(e), e
    print(f"columns: {narrow.schema.names} as named; a name the level drops is refused")

    if args.parquet_dir:
        for name in ("persons", "medical_insurance"):
            path = os.path.join(args.parquet_dir, f"{name}.parquet")
            (n,) = duckdb.sql(f"select count(*) from read_parquet('{path}')").fetchone()
            assert n == counts[name], f"duckdb reads {n} rows of {name}, flight sent {counts[name]}"
            print(f"duckdb {name}.parquet: {n} rows")
        (joined,) = duckdb.sql(
            f"select count(*) from read_parquet('{args.parquet_dir}/medical_insurance.parquet') m "
            f"join read_parquet('{args.parquet_dir}/persons.parquet') p using (id_pseudonym)").fetchone()
        assert joined > 0, "insurance joins persons on the pseudonym"
        print(f"duckdb join insurance x persons: {joined} rows")
        statuses = dict(duckdb.sql(
            f"select status, count(*) from read_parquet('{args.parquet_dir}/persons.parquet') group by status").fetchall())
        flight_statuses = {}
        for value in persons.column("status").to_pylist():
            flight_statuses[value] = flight_statuses.get(value, 0) + 1
        assert statuses == flight_statuses, f"duckdb counts {statuses} by status, flight sent {flight_statuses}"
        print(f"duckdb persons.parquet by status: {statuses}")
        narrow_file = os.path.join(args.parquet_dir, "persons-narrow.parquet")
        if os.path.exists(narrow_file):
            names = [row[0] for row in duckdb.sql(f"describe select * from read_parquet('{narrow_file}')").fetchall()]
            assert names == ["id_pseudonym", "sex"], f"popbase export --columns wrote {names}"
            print(f"duckdb persons-narrow.parquet: {names}")
        arrow_file = os.path.join(args.parquet_dir, "persons.arrow")
        if os.path.exists(arrow_file):
            with pyarrow.ipc.open_file(arrow_file) as reader:
                table = reader.read_all()
            assert table.num_rows == counts["persons"]
            assert table.column("id_pseudonym").to_pylist() == ids, "the file holds the same pseudonyms"
            print(f"arrow file persons.arrow: {table.num_rows} rows")

    if args.police_token:
        seq = int(persons.schema.metadata[SEQ])
        statistics = read(client, options, "statistics")
        household_id, members = change_an_address(args.gateway, args.police_token, persons, statistics)
        changed = read(client, options, "persons", since_seq=seq)
        assert changed.num_rows == members, f"incremental persons: {changed.num_rows} rows, {members} moved"
        assert set(changed.column("household_id").to_pylist()) == {household_id}
        households = read(client, options, "households", since_seq=seq)
        assert households.num_rows == 1
        nothing = read(client, options, "persons", since_seq=int(changed.schema.metadata[SEQ]))
        assert nothing.num_rows == 0
        print(f"incremental: {members} persons and 1 household changed, exactly those exported")
    print("export check passed")


if __name__ == "__main__":
    main()
