//! MySQL or MariaDB, as the connector class says: Debezium's MariaDB
//! connector (`io.debezium.connector.mariadb.MariaDbConnector`, 2.7+)
//! names its `source` block and schema-change records in its own
//! namespace and writes `connector: "mariadb"`, so subjects registered by
//! it keep their names when the same config runs on sluice.

/// Which connector's names the events carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Flavor {
    /// `io.debezium.connector.mysql.*`.
    #[default]
    MySql,
    /// `io.debezium.connector.mariadb.*`.
    MariaDb,
}

impl Flavor {
    /// The flavor of a `connector.class` (class or alias).
    pub fn of_class(class: Option<&str>) -> Self {
        match class {
            Some(c) if c.to_ascii_lowercase().contains("mariadb") => Self::MariaDb,
            _ => Self::MySql,
        }
    }

    /// The `source.connector` value.
    pub fn connector(self) -> &'static str {
        match self {
            Self::MySql => "mysql",
            Self::MariaDb => "mariadb",
        }
    }

    /// The namespace of the `Source` and schema-change schemas.
    pub fn namespace(self) -> &'static str {
        match self {
            Self::MySql => "io.debezium.connector.mysql",
            Self::MariaDb => "io.debezium.connector.mariadb",
        }
    }

    /// An index for per-flavor caches.
    pub fn index(self) -> usize {
        self as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_class_decides() {
        assert_eq!(
            Flavor::of_class(Some("io.debezium.connector.mariadb.MariaDbConnector")),
            Flavor::MariaDb
        );
        assert_eq!(Flavor::of_class(Some("mariadb")), Flavor::MariaDb);
        assert_eq!(
            Flavor::of_class(Some("io.debezium.connector.mysql.MySqlConnector")),
            Flavor::MySql
        );
        assert_eq!(Flavor::MariaDb.connector(), "mariadb");
    }
}
