"""Topic 00, start here: a tour of the real-or-embedded services (`tour`) and the suite's first
quiz (`questions.yaml`)."""
