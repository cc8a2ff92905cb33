"""Makes a doctor's annotation of a radiograph the way a viewer would, with
highdicom, for tests/it/peers/research_annotations_dicom.rs.

    make_annotations.py sr IMAGE OUT      TID 1500 Comprehensive 3D SR: a
                                          planar ROI polygon, finding Nodule,
                                          person observer Doe^Jane
    make_annotations.py gsps IMAGE OUT    GSPS: a closed box polyline in
                                          PIXEL units and the text "pneumonia",
                                          content creator Roe^Richard

The polygon is (20,30) (80,30) (80,90) (20,90); the box (100,40)-(160,100).
"""
import sys

import highdicom as hd
import numpy as np
import pydicom
from pydicom.sr.codedict import codes


def sr(image, out):
    observer = hd.sr.ObserverContext(
        observer_type=codes.DCM.Person,
        observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(
            name="Doe^Jane"
        ),
    )
    region = hd.sr.ImageRegion(
        graphic_type=hd.sr.GraphicTypeValues.POLYLINE,
        graphic_data=np.array(
            [[20.0, 30.0], [80.0, 30.0], [80.0, 90.0], [20.0, 90.0], [20.0, 30.0]]
        ),
        source_image=hd.sr.SourceImageForRegion.from_source_image(image),
    )
    group = hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(
            uid=hd.UID(), identifier="nodule 1"
        ),
        referenced_region=region,
        finding_type=codes.SCT.Nodule,
    )
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_person_context=observer),
        procedure_reported=codes.LN.CTUnspecifiedBodyRegion,
        imaging_measurements=[group],
    )
    document = hd.sr.Comprehensive3DSR(
        evidence=[image],
        content=report,
        series_number=100,
        series_instance_uid=hd.UID(),
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="Test viewer",
    )
    document.save_as(out)


def gsps(image, out):
    layer = hd.pr.GraphicLayer(layer_name="MARKUP", order=1)
    box = hd.pr.GraphicObject(
        graphic_type=hd.pr.GraphicTypeValues.POLYLINE,
        graphic_data=np.array(
            [[100.0, 40.0], [160.0, 40.0], [160.0, 100.0], [100.0, 100.0], [100.0, 40.0]]
        ),
        units=hd.pr.AnnotationUnitsValues.PIXEL,
    )
    label = hd.pr.TextObject(
        text_value="pneumonia",
        units=hd.pr.AnnotationUnitsValues.PIXEL,
        anchor_point=(130.0, 35.0),
    )
    annotation = hd.pr.GraphicAnnotation(
        referenced_images=[image],
        graphic_layer=layer,
        graphic_objects=[box],
        text_objects=[label],
    )
    state = hd.pr.GrayscaleSoftcopyPresentationState(
        referenced_images=[image],
        series_instance_uid=hd.UID(),
        series_number=200,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="Test viewer",
        manufacturer_model_name="Viewer",
        software_versions="1.0",
        device_serial_number="1",
        content_label="MARKUP",
        graphic_annotations=[annotation],
        graphic_layers=[layer],
        content_creator_name="Roe^Richard",
    )
    state.save_as(out)


def main(kind, image_path, out):
    image = pydicom.dcmread(image_path)
    {"sr": sr, "gsps": gsps}[kind](image, out)


if __name__ == "__main__":
    main(*sys.argv[1:])
