//! Efficiency alerts by mail (`slurm-usage alerts`, and the daemon's `[alerts] cron`): tell
//! each user what their jobs of the window wasted and what to request instead, and each
//! group contact which of the group's users to talk to (`docs/alerts.md`).
//!
//! - `rules.rs`: what is worth saying about a person's finished jobs (pure).
//! - `mail.rs`: the mails, plain text and a small HTML part (pure).
//! - `throttle.rs`: who was mailed when, in the data dir, under the alerts lock.
//! - `deliver.rs`: SMTP (lettre, STARTTLS when offered) or a sendmail program.
//! - `command.rs`: a round: read the window, judge, compose, print or send.
//!
//! Nothing here writes a partition; the only file written is the throttle record.

pub mod command;
pub mod deliver;
pub mod mail;
pub mod rules;
pub mod throttle;
