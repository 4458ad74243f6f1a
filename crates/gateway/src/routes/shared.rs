//! What several routes answer with.

use crate::gws::{ApiError, Status};

pub(super) async fn not_found() -> ApiError {
    ApiError::new(
        Status::NotFound,
        "no such resource (docs/web-api.md lists the routes)",
    )
}

/// An engine that could not be asked (stopping, no reply): an internal error.
pub(super) fn engine_error(e: crate::engine_link::LinkError) -> ApiError {
    ApiError::new(Status::Internal, e.to_string())
}
