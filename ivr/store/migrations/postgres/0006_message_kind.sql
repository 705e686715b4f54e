-- Survey comments join voice messages (voice of the customer): a detractor's spoken "why" after the score
-- is kept like a message, with its kind and the score it explains.
ALTER TABLE messages ADD COLUMN kind TEXT NOT NULL DEFAULT 'message';
ALTER TABLE messages ADD COLUMN survey_score INTEGER;
