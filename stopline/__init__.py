"""stopline: red-light enforcement from the camera pole to the review desk."""

__version__ = "0.1.0"
