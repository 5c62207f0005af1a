//! Materials' availability over gRPC (`proto/availability.proto`): the service a materials
//! process serves (`--grpc-addr`) over its in-process availability, and the client a sales
//! process asks instead when materials runs as a separate service (`--materials-url`). Both
//! give the kernel's [`Availability`], so the availability check is the same code either way.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tributary_kernel::availability::{Availability, AvailabilityError, Supply};
use tributary_kernel::master::CompanyCode;

/// The messages and stubs generated from `proto/availability.proto` (build.rs).
#[allow(clippy::unwrap_used, clippy::derive_partial_eq_without_eq)]
pub mod proto {
    tonic::include_proto!("tributary.materials.v1");
}

use proto::availability_client::AvailabilityClient;
use proto::availability_server::{Availability as AvailabilityService, AvailabilityServer};
use proto::{Receipt, SupplyReply, SupplyRequest};

/// How long a sales process waits for materials' answer before the check fails (503).
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

struct Served(Arc<dyn Availability>);

#[tonic::async_trait]
impl AvailabilityService for Served {
    async fn supply(
        &self,
        request: tonic::Request<SupplyRequest>,
    ) -> Result<tonic::Response<SupplyReply>, tonic::Status> {
        let asked = request.into_inner();
        let company = CompanyCode::parse(&asked.company)
            .map_err(|error| tonic::Status::invalid_argument(format!("company: {error}")))?;
        let supply = self
            .0
            .supply(&company, &asked.material, &asked.plant)
            .await
            .map_err(|error| tonic::Status::unavailable(error.to_string()))?;
        let dated = |list: Vec<(NaiveDate, Decimal)>| -> Vec<Receipt> {
            list.into_iter()
                .map(|(date, quantity)| Receipt {
                    date: date.to_string(),
                    quantity: quantity.to_string(),
                })
                .collect()
        };
        Ok(tonic::Response::new(SupplyReply {
            on_hand: supply.on_hand.to_string(),
            receipts: dated(supply.receipts),
            reserved: dated(supply.reserved),
        }))
    }
}

/// Serves `availability` over gRPC on `listener` until `shutdown` completes.
pub async fn serve(
    availability: Arc<dyn Availability>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    tonic::transport::Server::builder()
        .add_service(AvailabilityServer::new(Served(availability)))
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener),
            shutdown,
        )
        .await
}

/// Materials' availability asked over gRPC.
pub struct RemoteAvailability {
    client: AvailabilityClient<tonic::transport::Channel>,
}

impl RemoteAvailability {
    /// A client of the service at `url` (`http://host:port`); it connects on first use and
    /// reconnects after a failure.
    pub fn new(url: &str) -> Result<RemoteAvailability, String> {
        let endpoint = tonic::transport::Endpoint::from_shared(url.to_owned())
            .map_err(|error| format!("materials URL {url:?}: {error}"))?
            .connect_timeout(CALL_TIMEOUT)
            .timeout(CALL_TIMEOUT);
        Ok(RemoteAvailability {
            client: AvailabilityClient::new(endpoint.connect_lazy()),
        })
    }
}

fn reply_error(what: &str, value: &str) -> AvailabilityError {
    AvailabilityError::Unavailable(format!("materials answered {what} {value:?}"))
}

#[async_trait::async_trait]
impl Availability for RemoteAvailability {
    async fn supply(
        &self,
        company: &CompanyCode,
        material: &str,
        plant: &str,
    ) -> Result<Supply, AvailabilityError> {
        let reply = self
            .client
            .clone()
            .supply(SupplyRequest {
                company: company.to_string(),
                material: material.to_owned(),
                plant: plant.to_owned(),
            })
            .await
            .map_err(|status| {
                AvailabilityError::Unavailable(format!(
                    "materials' availability service: {} ({:?})",
                    status.message(),
                    status.code()
                ))
            })?
            .into_inner();
        let on_hand = Decimal::from_str(&reply.on_hand)
            .map_err(|_| reply_error("on hand", &reply.on_hand))?;
        let dated = |list: Vec<Receipt>| -> Result<Vec<(NaiveDate, Decimal)>, AvailabilityError> {
            list.into_iter()
                .map(|entry| {
                    let date = NaiveDate::from_str(&entry.date)
                        .map_err(|_| reply_error("a date", &entry.date))?;
                    let quantity = Decimal::from_str(&entry.quantity)
                        .map_err(|_| reply_error("a quantity", &entry.quantity))?;
                    Ok((date, quantity))
                })
                .collect()
        };
        Ok(Supply {
            on_hand,
            receipts: dated(reply.receipts)?,
            reserved: dated(reply.reserved)?,
        })
    }
}
