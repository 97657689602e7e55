//! What a listing or a chart is asked for, parsed once at the edge (the query string, the
//! command line's flags) into small bounded types.

use std::{fmt, str::FromStr};

use crate::lateness::MAX_CHART_MINUTES;

/// A state a job can be listed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    /// Scheduled and not claimed yet (due later, or due and waiting for a worker).
    Delayed,
    /// Claimed by a worker under a lease.
    Active,
    /// Failed too often: in the dead set until an operator retries or discards it.
    Failed,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Delayed => "delayed",
            JobState::Active => "active",
            JobState::Failed => "failed",
        }
    }

    /// The sorted set holding the jobs in this state.
    pub(super) fn set(self) -> &'static str {
        match self {
            JobState::Delayed => "due",
            JobState::Active => "leased",
            JobState::Failed => "dead",
        }
    }
}

impl FromStr for JobState {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "delayed" => Ok(JobState::Delayed),
            "active" => Ok(JobState::Active),
            "failed" => Ok(JobState::Failed),
            _ => Err("State must be delayed, active or failed"),
        }
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How many jobs a listing returns: 1–500, default 50.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit(u32);

impl Limit {
    pub const MAX: u32 = 500;

    pub fn get(self) -> u32 {
        self.0
    }
}

impl Default for Limit {
    fn default() -> Self {
        Limit(50)
    }
}

impl FromStr for Limit {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.parse::<u32>() {
            Ok(n) if (1..=Limit::MAX).contains(&n) => Ok(Limit(n)),
            _ => Err("Limit must be a whole number from 1 to 500"),
        }
    }
}

/// How many jobs a listing skips: 0–1,000,000, default 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Offset(u32);

impl Offset {
    pub const MAX: u32 = 1_000_000;

    pub fn get(self) -> u32 {
        self.0
    }
}

impl FromStr for Offset {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.parse::<u32>() {
            Ok(n) if n <= Offset::MAX => Ok(Offset(n)),
            _ => Err("Offset must be a whole number from 0 to 1000000"),
        }
    }
}

/// How many minutes the lateness chart covers: 1–180, default 60.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChartMinutes(u32);

impl ChartMinutes {
    pub fn get(self) -> u32 {
        self.0
    }
}

impl Default for ChartMinutes {
    fn default() -> Self {
        ChartMinutes(60)
    }
}

impl FromStr for ChartMinutes {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.parse::<u32>() {
            Ok(n) if (1..=MAX_CHART_MINUTES).contains(&n) => Ok(ChartMinutes(n)),
            _ => Err("Minutes must be a whole number from 1 to 180"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_parameters_are_bounded() {
        assert_eq!("failed".parse(), Ok(JobState::Failed));
        assert!("FAILED".parse::<JobState>().is_err());
        assert!("completed".parse::<JobState>().is_err());
        assert_eq!("500".parse::<Limit>().map(Limit::get), Ok(500));
        for bad in ["0", "501", "-1", "1.5", "", "ten"] {
            assert!(bad.parse::<Limit>().is_err(), "limit {bad:?}");
        }
        assert_eq!(Limit::default().get(), 50);
        assert_eq!("0".parse::<Offset>().map(Offset::get), Ok(0));
        assert!("1000001".parse::<Offset>().is_err());
        assert!("-1".parse::<Offset>().is_err());
        assert_eq!(
            "180".parse::<ChartMinutes>().map(ChartMinutes::get),
            Ok(180)
        );
        for bad in ["0", "181", "x"] {
            assert!(bad.parse::<ChartMinutes>().is_err(), "minutes {bad:?}");
        }
        assert_eq!(ChartMinutes::default().get(), 60);
    }
}
