//! The in-flight queue: sent records retired in send order as the broker
//! acknowledges them, each outcome booked in the offset tracker; a
//! failed delivery fails the task before its offset can be stored.

use std::sync::atomic::Ordering;

use futures_util::FutureExt;
use sluice_connector_api::ConnectorError;

use super::{InFlight, Pipeline, FENCED, FENCE_CHECK};
use crate::herder::record_sink::RecordSink;

impl<'a, S: RecordSink> Pipeline<'a, S> {
    /// Waits for the oldest record's delivery report; false if none is
    /// pending. A worker that loses its share while waiting (cut off from
    /// the broker, which is why no report comes) stops waiting: fenced.
    pub(super) async fn retire_front(&mut self) -> Result<bool, ConnectorError> {
        let Some(mut front) = self.in_flight.pop_front() else {
            return Ok(false);
        };
        let outcome = match front.delivery.take() {
            Some(mut delivery) => loop {
                tokio::select! {
                    outcome = &mut delivery => break Some(outcome),
                    () = tokio::time::sleep(FENCE_CHECK) => {
                        if !self.fenced && !self.deps.placement.owns(self.spec.unit()) {
                            front.delivery = Some(delivery);
                            self.in_flight.push_front(front);
                            self.fenced = true;
                            return Err(ConnectorError::retriable(FENCED));
                        }
                    }
                }
            },
            None => None,
        };
        self.settle(front, outcome)?;
        Ok(true)
    }

    /// Retires every record at the front whose report has already arrived.
    pub(super) fn drain_ready(&mut self) -> Result<(), ConnectorError> {
        while let Some(front) = self.in_flight.front_mut() {
            let outcome = match front.delivery.as_mut() {
                None => None,
                Some(delivery) => match delivery.now_or_never() {
                    None => return Ok(()),
                    Some(outcome) => Some(outcome),
                },
            };
            let front = self
                .in_flight
                .pop_front()
                .ok_or_else(|| ConnectorError::fatal("in-flight queue emptied underneath"))?;
            self.settle(front, outcome)?;
        }
        Ok(())
    }

    pub(super) async fn drain_all(&mut self) -> Result<(), ConnectorError> {
        while self.retire_front().await? {}
        Ok(())
    }

    /// Books one delivery outcome; a failed delivery fails the task before
    /// its offset (or any later one) can be stored.
    fn settle(
        &mut self,
        record: InFlight<S::Delivery>,
        outcome: Option<Result<(), String>>,
    ) -> Result<(), ConnectorError> {
        if let Some(outcome) = outcome {
            self.metrics.in_flight.fetch_sub(1, Ordering::Relaxed);
            if let Err(e) = outcome {
                self.offsets.fail(record.ticket);
                if let Some(fatal) = self.deps.producer_fatal_error() {
                    // Retrying with this producer cannot succeed.
                    return Err(ConnectorError::fatal(format!(
                        "the worker's Kafka producer hit a fatal error: {fatal}; no offset moved past the undelivered records. Restart the worker (GET /health answers 503 until then); its tasks resume from their stored offsets"
                    )));
                }
                return Err(ConnectorError::retriable(format!(
                    "the broker did not acknowledge a record: {e}; its offset and all later ones stay uncommitted and are re-sent"
                )));
            }
            self.metrics
                .records_produced
                .fetch_add(1, Ordering::Relaxed);
            self.metrics
                .bytes_produced
                .fetch_add(record.bytes as u64, Ordering::Relaxed);
        }
        self.offsets.ack(record.ticket);
        self.uncommitted += 1;
        self.metrics
            .uncommitted
            .store(self.uncommitted, Ordering::Relaxed);
        Ok(())
    }
}
