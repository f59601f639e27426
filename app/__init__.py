"""chiso: dossier timeliness and service-index monitoring for Vietnamese public administrations."""
