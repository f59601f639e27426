"""Administrative procedures (thủ tục hành chính) and their processing limits."""
