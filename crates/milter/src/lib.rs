//! The milter protocol (version 6, as Postfix 2.6+ and Sendmail 8.14+ speak it) and the
//! `dmarc milter` daemon.
//!
//! Layers, each usable alone:
//!
//! * [`codec`]: frames in and out, sans-I/O, with a frame size limit; every malformed
//!   frame a [`codec::CodecError`] saying which command, where and what.
//! * [`session`]: the protocol's state machine for one milter connection (negotiation,
//!   command order, abort, several messages, `SMFIC_QUIT_NC`), calling the
//!   [`filter`] traits. Neither of these knows about DMARC.
//! * [`filter`]: the seam: [`filter::Filter`] → [`filter::ConnectionFilter`] →
//!   [`filter::MessageFilter`], with the header edits and decisions they return.
//! * [`server`]: tokio listeners (TCP and Unix sockets in Postfix's and Sendmail's
//!   [`listen`] spellings), one task per connection, bounded, with reload and drain.
//! * [`handler`]: the DMARC filter, driving the staged receiver session frame by frame;
//!   [`counter`] counts observations and writes them to the store;
//!   [`config`], [`log`], [`metrics`] and [`daemon`] make the program.
//!
//! A filter answering every message with a header field, driven without any I/O:
//!
//! ```
//! use std::sync::Arc;
//! use dmarc_milter::codec::{Actions, Command, ConnectAddress, Protocol, Reply};
//! use dmarc_milter::filter::*;
//! use dmarc_milter::session::{Session, SessionLimits};
//!
//! struct Stamp;
//! struct Conn;
//! struct Msg;
//! impl Filter for Stamp {
//!     type Connection = Conn;
//!     fn connect(&self, _: &Client, _: &Negotiated, _: &Macros) -> Step<Conn> {
//!         Step::Continue(Conn)
//!     }
//! }
//! impl ConnectionFilter for Conn {
//!     type Message = Msg;
//!     fn helo(&mut self, _: &str, _: &Macros) {}
//!     fn mail(&mut self, _: &EnvelopeAddress, _: &Macros) -> Step<Msg> {
//!         Step::Continue(Msg)
//!     }
//! }
//! impl MessageFilter for Msg {
//!     fn rcpt(&mut self, _: &EnvelopeAddress, _: &Macros) {}
//!     fn header(&mut self, _: usize, _: &[u8], _: &[u8]) {}
//!     fn end_of_headers(&mut self, _: &Macros) -> Step<()> {
//!         Step::Continue(())
//!     }
//!     fn body(&mut self, _: &[u8]) -> BodyStep {
//!         BodyStep::Continue
//!     }
//!     async fn end_of_message(self, _: &Macros) -> Outcome {
//!         let field = HeaderField::new("X-Seen", "yes").unwrap();
//!         Outcome { edits: vec![HeaderEdit::Insert { index: 0, field }], ..Outcome::accept() }
//!     }
//! }
//!
//! let mut s = Session::new(Arc::new(Stamp), SessionLimits::default());
//! let mut send = |c| futures_executor::block_on(s.handle(c)).unwrap().replies;
//! send(Command::OptNeg { version: 6, actions: Actions(0x1ff), protocol: Protocol(0x1fffff) });
//! send(Command::Connect { hostname: "h".into(), address: ConnectAddress::Unknown });
//! send(Command::Mail { args: vec!["<a@example.org>".into()] });
//! send(Command::Rcpt { args: vec!["<b@example.net>".into()] });
//! send(Command::EndOfHeaders);
//! let replies = send(Command::EndOfMessage { chunk: vec![] });
//! // Postfix offered SMFIP_HDR_LEADSPC, so the session adds the space after the colon.
//! assert_eq!(replies, [
//!     Reply::InsertHeader { index: 0, name: "X-Seen".into(), value: " yes".into() },
//!     Reply::Accept,
//! ]);
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![warn(clippy::unwrap_used)]

pub mod client;
pub mod codec;
pub mod config;
pub mod counter;
pub mod daemon;
pub mod filter;
pub mod handler;
pub mod listen;
pub mod log;
pub mod metrics;
pub mod server;
pub mod session;
