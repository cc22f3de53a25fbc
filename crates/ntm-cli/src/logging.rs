//! The log subscriber: SageMaker's line format on standard error.
//!
//! Each line reads `[MM/DD/YYYY HH:MM:SS LEVEL <thread-id>] message`, the prefix
//! SageMaker's built-in algorithms write, so log filters and metric regexes written
//! for SageMaker NTM match ntm's lines too.

use std::fmt;
use std::io::IsTerminal;
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

struct SageMakerFormat;

impl<S, N> FormatEvent<S, N> for SageMakerFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let level = match *event.metadata().level() {
            Level::ERROR => "ERROR",
            Level::WARN => "WARNING",
            Level::INFO => "INFO",
            Level::DEBUG => "DEBUG",
            Level::TRACE => "TRACE",
        };
        let thread = thread_number();
        write!(
            writer,
            "[{} {level} {thread}] ",
            utc_timestamp(SystemTime::now())
        )?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// Returns a small number identifying the current thread, stable for its lifetime.
fn thread_number() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    thread_local!(static ID: u64 = NEXT.fetch_add(1, Ordering::Relaxed));
    ID.with(|id| *id)
}

/// Formats a time as `MM/DD/YYYY HH:MM:SS` in UTC.
fn utc_timestamp(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{month:02}/{day:02}/{year:04} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Converts days since 1970-01-01 to a proleptic Gregorian (year, month, day).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // Shift the epoch to 0000-03-01 so leap days fall at the end of each 400-year era.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Installs the subscriber. `RUST_LOG` overrides the default level, `info`. Event fields are
/// coloured only when standard error is a terminal, so logs written to files or pipes stay plain text.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .event_format(SageMakerFormat)
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamp_matches_known_dates() {
        assert_eq!(utc_timestamp(UNIX_EPOCH), "01/01/1970 00:00:00");
        // 2019-09-17 21:05:09 UTC.
        let t = UNIX_EPOCH + Duration::from_secs(1_568_754_309);
        assert_eq!(utc_timestamp(t), "09/17/2019 21:05:09");
        // A leap day: 2024-02-29 12:00:00 UTC.
        let t = UNIX_EPOCH + Duration::from_secs(1_709_208_000);
        assert_eq!(utc_timestamp(t), "02/29/2024 12:00:00");
    }
}
