import MapImage
