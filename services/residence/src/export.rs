//! The `residence_permits` dataset for bulk export (served on the role's
//! internal Flight endpoint; the gateway de-identifies and audits).

use std::sync::{Arc, LazyLock};

use arrow_schema::{Schema, SchemaRef};
use chrono::NaiveDate;
use popbase_common::{ServiceError, ServiceResult};
use popbase_export::columns::{Columns, Kind, Role, col};
use popbase_export::labels;
use popbase_export::labels::label_col;
use popbase_export::scan::export_table;
use popbase_export::{BatchSink, Dataset, DatasetSource, Export, Owner, Ticket};
use popbase_proto::common::{Address, Date};
use popbase_proto::residence::{PermitStatus, ResidenceBasis, ResidencePermit};
use popbase_storage::Snapshot;

use crate::Permits;
use crate::expiry;
use crate::tables::PERMITS;

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    use Kind::*;
    Arc::new(Schema::new(vec![
        col("permit_number", Text, Some(Role::Identifier)),
        col("id_number", Text, Some(Role::Subject)),
        col("committee_code", Text, None),
        col("address_detail", Text, Some(Role::Contact)),
        col("issued_on", Date, None),
        col("valid_until", Date, None),
        col("endorsements", U32, None),
        label_col("status", &labels!(PermitStatus, "PERMIT_STATUS_")),
        col("status_since", Date, None),
        label_col("basis", &labels!(ResidenceBasis, "RESIDENCE_BASIS_")),
    ]))
});

/// One permit's row, its status as it stands `on` the export's day (see
/// [`crate::expiry`]).
fn permit_row(columns: &mut Columns, p: &ResidencePermit, on: NaiveDate) {
    let lapsed = expiry::lapsed(p, on);
    let (status, since) = if lapsed {
        (PermitStatus::Expired as i32, &p.valid_until)
    } else {
        (p.status, &p.status_since)
    };
    columns
        .row()
        .text(&p.permit_number)
        .text(&p.id_number)
        .text(Address::committee_of(&p.address))
        .text(Address::detail_of(&p.address))
        .date(Date::naive_of(&p.issued_on))
        .date(Date::naive_of(&p.valid_until))
        .u32(u32::try_from(p.endorsements.len()).ok())
        .label(PermitStatus::try_from(status).ok().map(|e| e.as_str_name()), "PERMIT_STATUS_")
        .date(Date::naive_of(since))
        .label(ResidenceBasis::try_from(p.basis).ok().map(|e| e.as_str_name()), "RESIDENCE_BASIS_");
}

pub struct PermitExports {
    permits: Permits,
}

impl PermitExports {
    pub fn new(permits: Permits) -> Self {
        Self { permits }
    }
}

impl DatasetSource for PermitExports {
    fn owner(&self) -> Owner {
        Owner::Residence
    }

    fn schema(&self, _: &'static Dataset) -> SchemaRef {
        SCHEMA.clone()
    }

    fn open(&self, ticket: &Ticket, dataset: &'static Dataset) -> ServiceResult<Export> {
        if dataset.name != "residence_permits" {
            return Err(ServiceError::invalid(
                "ticket.dataset",
                format!("{} is not the residence service's", dataset.name),
            ));
        }
        let snapshot = self.permits.store().snapshot();
        let ticket = ticket.clone();
        Ok(Export {
            seq: snapshot.seq(),
            schema: SCHEMA.clone(),
            scan: Box::new(move |sink| permits(&snapshot, &ticket, sink)),
        })
    }
}

fn permits(snapshot: &Snapshot, ticket: &Ticket, sink: &mut BatchSink) -> ServiceResult<()> {
    let on = popbase_domain::clock::today();
    export_table(snapshot, &PERMITS, &[], ticket.since_seq, SCHEMA.clone(), sink, |columns, p| {
        if ticket.in_division(Address::committee_of(&p.address)) {
            permit_row(columns, p, on);
        }
    })
}
