"""HTTP only: the app factory, one router per resource, dependencies, error rendering."""
