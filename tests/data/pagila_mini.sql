-- A compact sample database in the spirit of pagila (the PostgreSQL port of MySQL's sakila
-- DVD-rental sample): the same kinds of objects a real app database carries, with rows
-- generated rather than shipped. Run as the database's owner role (app_owner); the roles
-- app_owner, app_reader and app_clerk exist beforehand (roles are global, not in a dump).
--
-- What it holds: enum and domain types, sequences and identity columns, foreign keys, a
-- partitioned table (payment, by month, as pagila has), a view, a materialized view,
-- a trigger function, a SECURITY DEFINER function, row level security with a policy,
-- column and table grants, a comment, an expression index.

CREATE TYPE mpaa_rating AS ENUM ('G', 'PG', 'PG-13', 'R', 'NC-17');
CREATE DOMAIN year AS integer CHECK (VALUE >= 1901 AND VALUE <= 2155);

CREATE TABLE language (
    language_id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL,
    last_update timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE category (
    category_id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL,
    last_update timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE actor (
    actor_id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    first_name text NOT NULL,
    last_name text NOT NULL,
    last_update timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_actor_last_name ON actor (lower(last_name));

CREATE TABLE film (
    film_id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    title text NOT NULL,
    description text,
    release_year year,
    language_id integer NOT NULL REFERENCES language,
    rental_duration smallint NOT NULL DEFAULT 3,
    rental_rate numeric(4, 2) NOT NULL DEFAULT 4.99,
    length smallint,
    rating mpaa_rating DEFAULT 'G',
    last_update timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE film IS 'every title the stores rent out';

CREATE TABLE film_actor (
    actor_id integer NOT NULL REFERENCES actor,
    film_id integer NOT NULL REFERENCES film,
    PRIMARY KEY (actor_id, film_id)
);

CREATE TABLE film_category (
    film_id integer NOT NULL REFERENCES film,
    category_id integer NOT NULL REFERENCES category,
    PRIMARY KEY (film_id, category_id)
);

CREATE TABLE customer (
    customer_id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    store_id smallint NOT NULL,
    first_name text NOT NULL,
    last_name text NOT NULL,
    email text,
    active boolean NOT NULL DEFAULT true,
    create_date date NOT NULL DEFAULT current_date
);

CREATE TABLE rental (
    rental_id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rental_date timestamptz NOT NULL,
    film_id integer NOT NULL REFERENCES film,
    customer_id integer NOT NULL REFERENCES customer,
    return_date timestamptz
);

CREATE TABLE payment (
    payment_id integer GENERATED ALWAYS AS IDENTITY,
    customer_id integer NOT NULL,
    rental_id integer NOT NULL,
    amount numeric(5, 2) NOT NULL,
    payment_date timestamptz NOT NULL,
    PRIMARY KEY (payment_date, payment_id)
) PARTITION BY RANGE (payment_date);
CREATE TABLE payment_p2022_01 PARTITION OF payment FOR VALUES FROM ('2022-01-01') TO ('2022-02-01');
CREATE TABLE payment_p2022_02 PARTITION OF payment FOR VALUES FROM ('2022-02-01') TO ('2022-03-01');
CREATE TABLE payment_p2022_03 PARTITION OF payment FOR VALUES FROM ('2022-03-01') TO ('2022-04-01');

CREATE FUNCTION last_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.last_update := now();
    RETURN NEW;
END
$$;
CREATE TRIGGER last_updated BEFORE UPDATE ON film FOR EACH ROW EXECUTE FUNCTION last_updated();
CREATE TRIGGER last_updated BEFORE UPDATE ON actor FOR EACH ROW EXECUTE FUNCTION last_updated();

-- the clerk may look up a customer's balance without reading payment itself
CREATE FUNCTION customer_balance(p_customer_id integer) RETURNS numeric
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
    SELECT coalesce(sum(amount), 0) FROM payment WHERE customer_id = p_customer_id
$$;
REVOKE ALL ON FUNCTION customer_balance(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION customer_balance(integer) TO app_clerk;

CREATE VIEW film_list AS
    SELECT f.film_id, f.title, c.name AS category, f.rental_rate, f.length, f.rating
      FROM film f
      JOIN film_category fc ON fc.film_id = f.film_id
      JOIN category c ON c.category_id = fc.category_id;

CREATE MATERIALIZED VIEW rental_by_category AS
    SELECT c.name AS category, sum(p.amount) AS total_sales
      FROM payment p
      JOIN rental r ON r.rental_id = p.rental_id
      JOIN film_category fc ON fc.film_id = r.film_id
      JOIN category c ON c.category_id = fc.category_id
     GROUP BY c.name
    WITH NO DATA;

-- rows
INSERT INTO language (name) VALUES ('English'), ('Italian'), ('Japanese'), ('Mandarin'), ('French'), ('German');
INSERT INTO category (name)
    SELECT unnest(ARRAY['Action', 'Animation', 'Children', 'Classics', 'Comedy', 'Documentary', 'Drama', 'Family',
                        'Foreign', 'Games', 'Horror', 'Music', 'New', 'Sci-Fi', 'Sports', 'Travel']);
-- Swedish names: their order differs between ICU sv-SE and libc C (å ä ö sort after z in Swedish)
INSERT INTO actor (first_name, last_name)
    SELECT (ARRAY['Åsa', 'Örjan', 'Ärla', 'Zacke', 'Anna', 'Olle', 'Emil', 'Ida'])[1 + g % 8],
           (ARRAY['Öberg', 'Åkesson', 'Ängström', 'Zetterlund', 'Andersson', 'Nilsson', 'Lind', 'Berg'])[1 + (g / 8) % 8]
      FROM generate_series(1, 200) AS g;
INSERT INTO film (title, description, release_year, language_id, rental_duration, rental_rate, length, rating)
    SELECT 'Film ' || g, md5(g::text), 1990 + g % 30, 1 + g % 6, 3 + g % 5, 0.99 + (g % 3) * 2,
           60 + g % 120, (ARRAY['G', 'PG', 'PG-13', 'R', 'NC-17'])[1 + g % 5]::mpaa_rating
      FROM generate_series(1, 1000) AS g;
INSERT INTO film_actor SELECT 1 + (g * 7) % 200, 1 + g % 1000 FROM generate_series(1, 5000) AS g ON CONFLICT DO NOTHING;
INSERT INTO film_category SELECT g, 1 + g % 16 FROM generate_series(1, 1000) AS g;
INSERT INTO customer (store_id, first_name, last_name, email)
    SELECT 1 + g % 2, 'Customer' || g, 'Surname' || g, 'customer' || g || '@example.org'
      FROM generate_series(1, 600) AS g;
INSERT INTO rental (rental_date, film_id, customer_id, return_date)
    SELECT timestamptz '2022-01-01' + g * interval '8 minutes', 1 + g % 1000, 1 + g % 600,
           timestamptz '2022-01-04' + g * interval '8 minutes'
      FROM generate_series(1, 16000) AS g;
INSERT INTO payment (customer_id, rental_id, amount, payment_date)
    SELECT customer_id, rental_id, 0.99 + rental_id % 10, rental_date FROM rental;
REFRESH MATERIALIZED VIEW rental_by_category;

-- who may do what: the reader reads the catalogue; the clerk serves the customers of store 1 only
GRANT USAGE ON SCHEMA public TO app_reader, app_clerk;
GRANT SELECT ON film, actor, category, language, film_actor, film_category, film_list TO app_reader;
GRANT SELECT, INSERT, UPDATE ON customer, rental TO app_clerk;
GRANT SELECT (film_id, title, rental_rate) ON film TO app_clerk;
ALTER TABLE customer ENABLE ROW LEVEL SECURITY;
CREATE POLICY store_1_only ON customer TO app_clerk USING (store_id = 1) WITH CHECK (store_id = 1);
