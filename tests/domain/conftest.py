MARK = "domain"
