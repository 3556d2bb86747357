//! Confluent Schema Registry's errors: a five-digit `error_code` whose first
//! three digits are the HTTP status, and a message, with the same codes
//! and wording clients match on.

/// A registry request that cannot be served.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RegistryError {
    /// 40401
    #[error("Subject '{0}' not found.")]
    SubjectNotFound(String),
    /// 40402
    #[error("Version {0} not found.")]
    VersionNotFound(String),
    /// 40403
    #[error("{0}")]
    SchemaNotFound(String),
    /// 40404
    #[error("Subject '{0}' was soft deleted.Set permanent=true to delete permanently")]
    SubjectSoftDeleted(String),
    /// 40405
    #[error("Subject '{0}' was not deleted first before being permanently deleted")]
    SubjectNotSoftDeleted(String),
    /// 40406
    #[error("Subject '{0}' Version {1} was soft deleted.Set permanent=true to delete permanently")]
    VersionSoftDeleted(String, i32),
    /// 40407
    #[error("Subject '{0}' Version {1} was not deleted first before being permanently deleted")]
    VersionNotSoftDeleted(String, i32),
    /// 40408
    #[error("Subject '{0}' does not have subject-level compatibility configured")]
    SubjectLevelCompatibilityNotConfigured(String),
    /// 409
    #[error("{0}")]
    Incompatible(String),
    /// 42201
    #[error("{0}")]
    InvalidSchema(String),
    /// 42202
    #[error("The specified version '{0}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\"")]
    InvalidVersion(String),
    /// 42203
    #[error("Invalid compatibility level. Valid values are none, backward, forward, full, backward_transitive, forward_transitive, and full_transitive")]
    InvalidCompatibilityLevel,
    /// 42204
    #[error("Invalid mode. Valid values are READWRITE, READONLY and IMPORT")]
    InvalidMode,
    /// 42205
    #[error("{0}")]
    OperationNotPermitted(String),
    /// 42207
    #[error("{0}")]
    SchemaIdConflict(String),
    /// 400 for bodies that are not what the endpoint takes.
    #[error("{0}")]
    BadRequest(String),
    /// 50001
    #[error("Error in the backend data store: {0}")]
    Store(String),
}

impl RegistryError {
    /// Confluent's `error_code`.
    pub fn code(&self) -> u32 {
        match self {
            Self::SubjectNotFound(_) => 40401,
            Self::VersionNotFound(_) => 40402,
            Self::SchemaNotFound(_) => 40403,
            Self::SubjectSoftDeleted(_) => 40404,
            Self::SubjectNotSoftDeleted(_) => 40405,
            Self::VersionSoftDeleted(..) => 40406,
            Self::VersionNotSoftDeleted(..) => 40407,
            Self::SubjectLevelCompatibilityNotConfigured(_) => 40408,
            Self::Incompatible(_) => 409,
            Self::InvalidSchema(_) => 42201,
            Self::InvalidVersion(_) => 42202,
            Self::InvalidCompatibilityLevel => 42203,
            Self::InvalidMode => 42204,
            Self::OperationNotPermitted(_) => 42205,
            Self::SchemaIdConflict(_) => 42207,
            Self::BadRequest(_) => 400,
            Self::Store(_) => 50001,
        }
    }

    /// The HTTP status: the code's first three digits.
    pub fn http_status(&self) -> u16 {
        let code = self.code();
        let status = if code >= 10_000 { code / 100 } else { code };
        u16::try_from(status).unwrap_or(500)
    }
}
