//! CNI errors: the spec's codes and its error JSON
//! (`{"cniVersion", "code", "msg", "details"}` on stdout, non-zero exit).

use serde::Serialize;

/// Error codes of the CNI spec (1.0.0 section "Error", 1.1.0 for 50/51).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    IncompatibleVersion = 1,
    UnsupportedField = 2,
    UnknownContainer = 3,
    InvalidEnvironment = 4,
    Io = 5,
    Decode = 6,
    InvalidConfig = 7,
    TryAgainLater = 11,
    /// 1.1.0: the plugin cannot service ADD requests (STATUS).
    NotAvailable = 50,
}

#[derive(Debug, thiserror::Error)]
#[error("{msg}{}", if .details.is_empty() { String::new() } else { format!(": {}", .details) })]
pub struct CniError {
    /// A spec code, or one passed through from a delegated IPAM plugin.
    pub code: u32,
    pub msg: String,
    pub details: String,
}

impl CniError {
    pub fn new(code: Code, msg: impl Into<String>) -> CniError {
        CniError { code: code as u32, msg: msg.into(), details: String::new() }
    }

    pub fn with(code: Code, msg: impl Into<String>, details: impl ToString) -> CniError {
        CniError { code: code as u32, msg: msg.into(), details: details.to_string() }
    }

    /// A library failure while doing `what`.
    pub fn io(what: impl Into<String>) -> impl FnOnce(crate::Error) -> CniError {
        move |e| CniError::with(Code::Io, what, e)
    }

    /// The JSON a runtime reads on stdout.
    pub fn to_json(&self, cni_version: &str) -> serde_json::Value {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Out<'a> {
            cni_version: &'a str,
            code: u32,
            msg: &'a str,
            #[serde(skip_serializing_if = "str::is_empty")]
            details: &'a str,
        }
        serde_json::to_value(Out { cni_version, code: self.code, msg: &self.msg, details: &self.details })
            .expect("plain struct")
    }
}

pub type CniResult<T> = std::result::Result<T, CniError>;
