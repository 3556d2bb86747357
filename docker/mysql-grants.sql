-- What the MySQL source needs (as Debezium documents it): read the
-- captured tables, take the brief global read lock of the `minimal`
-- snapshot (RELOAD), and read the binlog as a replica. Run once by the
-- mysql image's init, after the inventory data.
GRANT SELECT, RELOAD, SHOW DATABASES, REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO 'sluice'@'%';
FLUSH PRIVILEGES;
