"""Administrative units (ministries, provinces, departments, communes, desks) and their tree."""
