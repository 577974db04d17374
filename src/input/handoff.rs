//! The hand-off between receivers and the pipeline: batches of raw messages
//! travel over a bounded channel, and the bytes in flight are held to a
//! budget. A receiver never waits here: when the channel or the budget is
//! full the batch is dropped and counted as `buffer_full`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;

use crate::record::Timestamp;

/// One message inside a batch: a byte range of `Batch::data`.
#[derive(Debug, Clone)]
pub struct Msg {
    pub start: u32,
    pub len: u32,
    /// The sender's address, kept only when `Source_Address_Key` is set.
    pub peer: Option<Box<str>>,
}

/// Messages received together from one input.
#[derive(Debug)]
pub struct Batch {
    /// Index of the input instance that received it.
    pub input: usize,
    /// When the receiver took the batch off the socket (the event time of
    /// records whose parser gives none).
    pub received_at: Timestamp,
    pub data: Vec<u8>,
    pub msgs: Vec<Msg>,
}

impl Batch {
    pub fn new(input: usize) -> Self {
        Batch { input, received_at: Timestamp::default(), data: Vec::new(), msgs: Vec::new() }
    }

    /// A batch sized for `msgs` messages of `bytes` in total (no growth slack:
    /// what sits in the hand-off is what the budget counts).
    pub fn with_capacity(input: usize, msgs: usize, bytes: usize) -> Self {
        Batch {
            input,
            received_at: Timestamp::default(),
            data: Vec::with_capacity(bytes),
            msgs: Vec::with_capacity(msgs),
        }
    }

    pub fn push(&mut self, bytes: &[u8], peer: Option<Box<str>>) {
        let start = self.data.len() as u32;
        self.data.extend_from_slice(bytes);
        self.msgs.push(Msg { start, len: bytes.len() as u32, peer });
    }

    pub fn message(&self, m: &Msg) -> &[u8] {
        self.data.get(m.start as usize..(m.start + m.len) as usize).unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        self.msgs.is_empty()
    }

    /// What this batch counts against the budget.
    pub fn cost(&self) -> usize {
        self.data.len() + self.msgs.len() * std::mem::size_of::<Msg>()
    }
}

/// The sending side, one clone per receiver.
#[derive(Clone)]
pub struct Handoff {
    tx: SyncSender<Batch>,
    in_flight: Arc<AtomicUsize>,
    limit: usize,
}

/// The pipeline's side.
pub struct Intake {
    rx: Receiver<Batch>,
    in_flight: Arc<AtomicUsize>,
    limit: usize,
}

/// A channel of at most `max_batches` batches and `limit` bytes in flight.
pub fn channel(max_batches: usize, limit: usize) -> (Handoff, Intake) {
    let (tx, rx) = mpsc::sync_channel(max_batches.max(1));
    let in_flight = Arc::new(AtomicUsize::new(0));
    (Handoff { tx, in_flight: in_flight.clone(), limit }, Intake { rx, in_flight, limit })
}

impl Handoff {
    /// Offer a batch without waiting. On refusal the batch comes back so the
    /// caller can count its messages and reuse its buffers.
    pub fn offer(&self, batch: Batch) -> Result<(), Batch> {
        let cost = batch.cost();
        let before = self.in_flight.fetch_add(cost, Ordering::AcqRel);
        if before + cost > self.limit && before > 0 {
            self.in_flight.fetch_sub(cost, Ordering::AcqRel);
            return Err(batch);
        }
        match self.tx.try_send(batch) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(b)) | Err(TrySendError::Disconnected(b)) => {
                self.in_flight.fetch_sub(cost, Ordering::AcqRel);
                Err(b)
            }
        }
    }

    /// Send, waiting for room: only for the final drain at shutdown, when
    /// what the kernel already accepted must not be lost.
    pub fn send_blocking(&self, batch: Batch) -> bool {
        self.in_flight.fetch_add(batch.cost(), Ordering::AcqRel);
        self.tx.send(batch).is_ok()
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }
}

impl Intake {
    pub fn recv_timeout(&self, d: std::time::Duration) -> Result<Batch, mpsc::RecvTimeoutError> {
        self.rx.recv_timeout(d)
    }

    pub fn try_recv(&self) -> Option<Batch> {
        self.rx.try_recv().ok()
    }

    /// Release a processed batch's budget.
    pub fn done(&self, batch: &Batch) {
        self.in_flight.fetch_sub(batch.cost(), Ordering::AcqRel);
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// The bytes the hand-off may hold (`Buffer_Limit`).
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The in-flight byte count, for the buffer occupancy gauge.
    pub fn in_flight_handle(&self) -> Arc<AtomicUsize> {
        self.in_flight.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(n: usize) -> Batch {
        let mut b = Batch::new(0);
        for _ in 0..n {
            b.push(&[b'x'; 100], None);
        }
        b
    }

    #[test]
    fn refuses_over_budget_but_always_takes_one() {
        let (tx, rx) = channel(16, 250);
        // A single batch larger than the budget still passes when nothing is in flight,
        // so a huge message is never refused for its size alone.
        assert!(tx.offer(batch(5)).is_ok());
        assert!(tx.offer(batch(1)).is_err());
        let b = rx.try_recv().unwrap();
        rx.done(&b);
        assert_eq!(rx.in_flight(), 0);
        assert!(tx.offer(batch(1)).is_ok());
    }

    #[test]
    fn refuses_when_channel_full() {
        let (tx, _rx) = channel(1, usize::MAX);
        assert!(tx.offer(batch(1)).is_ok());
        let back = tx.offer(batch(2)).unwrap_err();
        assert_eq!(back.msgs.len(), 2);
        assert_eq!(tx.in_flight(), batch(1).cost());
    }

    #[test]
    fn messages_are_byte_ranges() {
        let mut b = Batch::new(3);
        b.push(b"one", None);
        b.push(b"", None);
        b.push(b"three", Some("1.2.3.4:5".into()));
        let got: Vec<&[u8]> = b.msgs.iter().map(|m| b.message(m)).collect();
        assert_eq!(got, vec![&b"one"[..], b"", b"three"]);
    }
}
