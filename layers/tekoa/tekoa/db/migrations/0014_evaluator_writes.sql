-- The evaluator inserts one evaluation per running bot and candle: 10,000 rows a minute at
-- 10,000 bots, each paying a row trigger per foreign key. The user key is implied by the bot
-- key — (bot_id, user_id) references bots (id, user_id), and a bot's user references users,
-- both ON DELETE CASCADE — so checking it too only doubled that cost.
ALTER TABLE evaluations DROP CONSTRAINT evaluations_user_id_fkey;

-- Every tick updates every running bot's runtime row (memory, last candle). Room on each page
-- keeps those updates HOT (the new version on the same page, no index entry), where full pages
-- sent each new version to another page with a new primary-key entry.
ALTER TABLE bot_runtime SET (fillfactor = 50);
