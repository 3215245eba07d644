//! SPF conformance (RFC 7208), driven by the outside suites in `../shared/corpora`:
//! the openspf RFC 7208 and RFC 4408 suites (`openspf`), the mail-auth SPF cases
//! (`mail_auth`), and properties of evaluation cost and hostile records (`cost`).

mod cost;
mod mail_auth;
mod openspf;
mod zone;
