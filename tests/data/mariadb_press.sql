-- A compact WordPress-like schema for kompose's MariaDB tests: utf8mb4 data (emoji, CJK,
-- quotes, backslashes), a generated column, foreign keys, a view over a view, a trigger, a
-- function and a procedure, an event, AUTO_INCREMENT counters above the highest id,
-- a table with its own collation, and a BLOB. Runs in any database (no USE).
SET NAMES utf8mb4;

CREATE TABLE wp_users (
  ID bigint unsigned NOT NULL AUTO_INCREMENT,
  user_login varchar(60) NOT NULL,
  user_email varchar(100) NOT NULL,
  display_name varchar(250) NOT NULL DEFAULT '',
  login_lower varchar(60) AS (LOWER(user_login)) STORED,
  PRIMARY KEY (ID),
  UNIQUE KEY user_login (user_login)
) ENGINE=InnoDB AUTO_INCREMENT=100 DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE wp_posts (
  ID bigint unsigned NOT NULL AUTO_INCREMENT,
  post_author bigint unsigned NOT NULL,
  post_title text NOT NULL,
  post_content longtext NOT NULL,
  post_status varchar(20) NOT NULL DEFAULT 'publish',
  post_date datetime NOT NULL DEFAULT '2024-01-01 00:00:00',
  comment_count bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (ID),
  KEY post_author (post_author),
  CONSTRAINT fk_posts_author FOREIGN KEY (post_author) REFERENCES wp_users (ID) ON DELETE CASCADE
) ENGINE=InnoDB AUTO_INCREMENT=500 DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE wp_comments (
  comment_ID bigint unsigned NOT NULL AUTO_INCREMENT,
  comment_post_ID bigint unsigned NOT NULL,
  comment_content text NOT NULL,
  PRIMARY KEY (comment_ID),
  CONSTRAINT fk_comments_post FOREIGN KEY (comment_post_ID) REFERENCES wp_posts (ID) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE wp_options (
  option_id bigint unsigned NOT NULL AUTO_INCREMENT,
  option_name varchar(191) NOT NULL,
  option_value longtext NOT NULL,
  autoload varchar(20) NOT NULL DEFAULT 'yes',
  PRIMARY KEY (option_id),
  UNIQUE KEY option_name (option_name)
) ENGINE=InnoDB DEFAULT CHARSET=latin1 COLLATE=latin1_swedish_ci;

CREATE TABLE wp_media (
  id int NOT NULL AUTO_INCREMENT PRIMARY KEY,
  name varchar(100) NOT NULL,
  data longblob NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE wp_audit (
  id int NOT NULL AUTO_INCREMENT PRIMARY KEY,
  post_id bigint unsigned NOT NULL,
  note varchar(200) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

INSERT INTO wp_users (ID, user_login, user_email, display_name) VALUES
  (1, 'Admin', 'admin@example.org', 'Ädmin Ünïcode'),
  (2, 'Chiyo', 'chiyo@example.org', '小野 千代 🌸'),
  (3, 'Back\\Slash', 'o''brien@example.org', 'O''Brien "quoted" \\ back');

INSERT INTO wp_posts (ID, post_author, post_title, post_content, post_date) VALUES
  (1, 1, 'Hello world', 'Welcome to WordPress. 🎉', '2024-02-29 12:00:00'),
  (2, 2, 'こんにちは', 'Unicode body: ✓ ∑ 😀 — “quotes”', '2024-03-01 08:30:00'),
  (3, 3, 'Tabs\tand\nnewlines', 'Line 1\nLine 2\r\n\ttabbed \\ backslash', '2024-03-02 00:00:00');

INSERT INTO wp_comments (comment_post_ID, comment_content) VALUES (1, 'First! 👍'), (2, 'いいね'), (2, 'second');
INSERT INTO wp_options (option_name, option_value) VALUES ('siteurl', 'http://press.example'), ('blogname', 'Caf\xe9');
INSERT INTO wp_media (name, data) VALUES ('bytes', UNHEX('00FF10E2808B5C27220D0A1A')), ('pattern', REPEAT(UNHEX('DEADBEEF'), 4096));

-- the comment counter is kept by a trigger
DELIMITER ;;
CREATE TRIGGER wp_comments_count AFTER INSERT ON wp_comments FOR EACH ROW
BEGIN
  UPDATE wp_posts SET comment_count = comment_count + 1 WHERE ID = NEW.comment_post_ID;
  INSERT INTO wp_audit (post_id, note) VALUES (NEW.comment_post_ID, CONCAT('comment ', NEW.comment_ID));
END;;
CREATE FUNCTION post_slug(title TEXT) RETURNS varchar(200) CHARSET utf8mb4 DETERMINISTIC
RETURN LOWER(REPLACE(TRIM(title), ' ', '-'));;
CREATE PROCEDURE publish_all(IN who bigint unsigned)
BEGIN
  UPDATE wp_posts SET post_status = 'publish' WHERE post_author = who;
  SELECT ROW_COUNT() AS published;
END;;
CREATE EVENT purge_audit ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01 03:00:00' DISABLE
  COMMENT 'keeps wp_audit short' DO DELETE FROM wp_audit WHERE id < 0;;
DELIMITER ;

UPDATE wp_posts SET comment_count = (SELECT count(*) FROM wp_comments WHERE comment_post_ID = wp_posts.ID);

CREATE VIEW wp_published AS
  SELECT p.ID, p.post_title, u.display_name AS author FROM wp_posts p JOIN wp_users u ON u.ID = p.post_author
  WHERE p.post_status = 'publish';
CREATE VIEW wp_published_count AS SELECT author, count(*) AS posts FROM wp_published GROUP BY author;
