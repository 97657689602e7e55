//! The operators' queue API (`/api/queues...`) against the real Redis: who may see and act,
//! counts and listings as jobs are scheduled, claimed, fired and fail, retry, promote and
//! discard (and their refusals), lateness across replicas, and the OpenAPI document.

mod access;
mod actions;
mod counts;
mod helpers;
mod lateness;
mod listing;
mod openapi;
