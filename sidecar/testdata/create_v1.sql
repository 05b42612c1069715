CREATE DATABASE IF NOT EXISTS `_vt`;

CREATE TABLE IF NOT EXISTS `_vt`.`sidecar_schema` (
  `name` varbinary(64) NOT NULL,
  `version` int unsigned NOT NULL,
  PRIMARY KEY (`name`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS `_vt`.`reparent_journal` (
  `time_created_ns` bigint unsigned NOT NULL,
  `action_name` varbinary(255) NOT NULL,
  `primary_alias` varbinary(255) NOT NULL,
  `replication_position` varbinary(64000) DEFAULT NULL,
  PRIMARY KEY (`time_created_ns`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS `_vt`.`heartbeat` (
  `keyspaceShard` varbinary(256) NOT NULL,
  `tabletUid` int unsigned NOT NULL,
  `ts` bigint unsigned NOT NULL,
  PRIMARY KEY (`keyspaceShard`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS `_vt`.`semisync_heartbeat` (
  `ts` bigint unsigned NOT NULL,
  PRIMARY KEY (`ts`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS `_vt`.`vreplication` (
  `id` int NOT NULL AUTO_INCREMENT,
  `workflow` varbinary(1000) DEFAULT NULL,
  `source` mediumblob NOT NULL,
  `pos` varbinary(10000) NOT NULL,
  `stop_pos` varbinary(10000) DEFAULT NULL,
  `max_tps` bigint NOT NULL,
  `max_replication_lag` bigint NOT NULL,
  `cell` varbinary(1000) DEFAULT NULL,
  `tablet_types` varbinary(100) DEFAULT NULL,
  `time_updated` bigint NOT NULL,
  `transaction_timestamp` bigint NOT NULL,
  `state` varbinary(100) NOT NULL,
  `message` varbinary(1000) DEFAULT NULL,
  `db_name` varbinary(255) NOT NULL,
  `rows_copied` bigint NOT NULL DEFAULT '0',
  `tags` varbinary(1024) NOT NULL DEFAULT '',
  `time_heartbeat` bigint NOT NULL DEFAULT '0',
  `workflow_type` int NOT NULL DEFAULT '0',
  `time_throttled` bigint NOT NULL DEFAULT '0',
  `component_throttled` varchar(255) NOT NULL DEFAULT '',
  `reason_throttled` varchar(1000) NOT NULL DEFAULT '',
  `workflow_sub_type` int NOT NULL DEFAULT '0',
  `defer_secondary_keys` tinyint(1) NOT NULL DEFAULT '0',
  `options` json NOT NULL,
  PRIMARY KEY (`id`),
  KEY `workflow_idx` (`workflow`(64))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS `_vt`.`copy_state` (
  `id` bigint unsigned NOT NULL AUTO_INCREMENT,
  `vrepl_id` int NOT NULL,
  `table_name` varbinary(128) NOT NULL,
  `lastpk` varbinary(2000) DEFAULT NULL,
  PRIMARY KEY (`id`),
  KEY `vrepl_id` (`vrepl_id`, `table_name`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS `_vt`.`post_copy_action` (
  `id` bigint NOT NULL AUTO_INCREMENT,
  `vrepl_id` int NOT NULL,
  `table_name` varbinary(128) NOT NULL,
  `action` json NOT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `vrepl_id` (`vrepl_id`, `table_name`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS `_vt`.`vreplication_log` (
  `id` bigint NOT NULL AUTO_INCREMENT,
  `vrepl_id` int NOT NULL,
  `type` varbinary(256) NOT NULL,
  `state` varbinary(100) NOT NULL,
  `created_at` timestamp NULL DEFAULT CURRENT_TIMESTAMP,
  `updated_at` timestamp NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
  `message` text NOT NULL,
  `count` bigint NOT NULL DEFAULT '1',
  PRIMARY KEY (`id`),
  KEY `vrepl_id_idx` (`vrepl_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS `_vt`.`resharding_journal` (
  `id` bigint NOT NULL,
  `db_name` varbinary(255) DEFAULT NULL,
  `val` longblob,
  PRIMARY KEY (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS `_vt`.`schema_version` (
  `id` int NOT NULL AUTO_INCREMENT,
  `pos` varbinary(10000) NOT NULL,
  `time_updated` bigint NOT NULL,
  `ddl` blob DEFAULT NULL,
  `schemax` longblob NOT NULL,
  PRIMARY KEY (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS `_vt`.`vdiff` (
  `id` bigint NOT NULL AUTO_INCREMENT,
  `vdiff_uuid` varchar(64) NOT NULL,
  `workflow` varbinary(1024) DEFAULT NULL,
  `keyspace` varbinary(256) DEFAULT NULL,
  `shard` varchar(255) NOT NULL,
  `db_name` varbinary(1024) DEFAULT NULL,
  `state` varbinary(64) DEFAULT NULL,
  `options` json DEFAULT NULL,
  `created_at` timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
  `started_at` timestamp NULL DEFAULT NULL,
  `liveness_timestamp` timestamp NULL DEFAULT NULL,
  `completed_at` timestamp NULL DEFAULT NULL,
  `last_error` varbinary(1024) DEFAULT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `uuid_idx` (`vdiff_uuid`),
  KEY `state` (`state`),
  KEY `ks_wf_idx` (`keyspace`(64), `workflow`(64))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS `_vt`.`vdiff_table` (
  `vdiff_id` bigint NOT NULL,
  `table_name` varbinary(128) NOT NULL,
  `state` varbinary(64) DEFAULT NULL,
  `lastpk` varbinary(2000) DEFAULT NULL,
  `table_rows` bigint NOT NULL DEFAULT '0',
  `rows_compared` bigint NOT NULL DEFAULT '0',
  `mismatch` tinyint(1) NOT NULL DEFAULT '0',
  `report` json DEFAULT NULL,
  `created_at` timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
  `updated_at` timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
  PRIMARY KEY (`vdiff_id`, `table_name`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS `_vt`.`vdiff_log` (
  `id` bigint NOT NULL AUTO_INCREMENT,
  `vdiff_id` bigint NOT NULL,
  `created_at` timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
  `message` text NOT NULL,
  PRIMARY KEY (`id`),
  KEY `vdiff_id_idx` (`vdiff_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

INSERT INTO `_vt`.`sidecar_schema` (`name`, `version`) VALUES ('tabletd', 1) ON DUPLICATE KEY UPDATE `version` = GREATEST(`version`, VALUES(`version`));

