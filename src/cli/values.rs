//! The command line's spellings of library choices (clap's value enums), kept out of the
//! library so its types carry no command-line concerns.

use crate::app::Channel;
use crate::export::Format;
use crate::plan::Target;
use clap::ValueEnum;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TargetArg {
    /// The installations of matching pairs.
    Installations,
    /// Each person with at least one matching pair (persons without installations included).
    Persons,
}

impl From<TargetArg> for Target {
    fn from(t: TargetArg) -> Target {
        match t {
            TargetArg::Installations => Target::Installations,
            TargetArg::Persons => Target::Persons,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ChannelArg {
    /// Reachable installations: not uninstalled, push registration enabled.
    Push,
    /// Persons with an email address.
    Email,
    /// Persons with a phone number.
    Sms,
}

impl From<ChannelArg> for Channel {
    fn from(c: ChannelArg) -> Channel {
        match c {
            ChannelArg::Push => Channel::Push,
            ChannelArg::Email => Channel::Email,
            ChannelArg::Sms => Channel::Sms,
        }
    }
}

/// A file format of exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FileFormatArg {
    Csv,
    Jsonl,
    Json,
    Parquet,
}

impl From<FileFormatArg> for Format {
    fn from(f: FileFormatArg) -> Format {
        match f {
            FileFormatArg::Csv => Format::Csv,
            FileFormatArg::Jsonl => Format::Jsonl,
            FileFormatArg::Json => Format::Json,
            FileFormatArg::Parquet => Format::Parquet,
        }
    }
}

/// How rows are shown on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RowsFormatArg {
    /// A table (the default on a terminal).
    Table,
    Csv,
    Jsonl,
    /// One JSON array.
    Json,
}

/// How a result other than rows is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// For people (also `text`).
    #[value(alias = "text")]
    Table,
    Json,
}
